"""devhost: the local Azure Functions host for simgate (never deployed).

`python -m devhost` sets up `.local/`, starts Azurite when needed and serves `function_app:app` on 127.0.0.1:7071
with the real host's HTTP routing, queue-trigger and timer semantics. `devhost.host.DevHost` does the same
in-process for tests.
"""
