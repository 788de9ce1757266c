"""Every app setting the code reads is set by main.bicep (or is local-only, with the reason), and the template's
settings and resources agree with the code: identity-based storage, Key Vault references, the names of the queue
and the table, nothing Flex Consumption refuses.
"""

from __future__ import annotations

import re
import tokenize
from pathlib import Path

from core.config import DISPATCH_QUEUE
from tests.deploy import bicep

ROOT = bicep.ROOT
SOURCES = [
    ROOT / "function_app.py",
    *sorted((ROOT / "core").rglob("*.py")),
    *sorted((ROOT / "blueprints").rglob("*.py")),
]

# How the code reads a setting: env("X" (core/config.py's `env = os.environ.get`), env.get("X" (os.environ passed in
# as `env`), os.environ.get("X", os.getenv("X", os.environ["X"], a "%X%" binding expression the host resolves, and
# connection="X" on a trigger.
READS = [
    r"""\benv\(\s*["']([A-Za-z_]\w*)["']""",
    r"""\benv\.get\(\s*["']([A-Za-z_]\w*)["']""",
    r"""environ\.get\(\s*["']([A-Za-z_]\w*)["']""",
    r"""os\.getenv\(\s*["']([A-Za-z_]\w*)["']""",
    r"""os\.environ\[\s*["']([A-Za-z_]\w*)["']\s*\]""",
    r"""["']%([A-Za-z_]\w*)%["']""",
]
CONNECTION = r"""\bconnection\s*=\s*["']([A-Za-z_]\w*)["']"""

# Read by the code, deliberately not set in Azure.
LOCAL_ONLY = {
    "AzureWebJobsStorage": "a connection string with an account key, for Azurite; in Azure the identity-based "
    "AzureWebJobsStorage__* settings stand in for it",
    "SIMGATE_STORAGE_CA": "trusts Azurite's self-signed certificate; Azure Storage presents a publicly trusted one",
    "SIMGATE_CASES_DIR": "points tests at a scratch catalog; the deployed app reads the packaged cases/",
}

# Set by main.bicep for the Functions host rather than the code.
HOST_ONLY = {
    "AzureWebJobsStorage__credential": "the host's identity-based connection for the dispatch queue trigger",
    "AzureWebJobsStorage__clientId": "which identity the host's connection uses (user-assigned)",
    "AzureWebJobsStorage__queueServiceUri": "the host's queue endpoint (the trigger and the poison queue)",
    "AzureWebJobsStorage__tableServiceUri": "the host's table endpoint",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "where the host sends telemetry",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "sends telemetry with the identity (local auth is off)",
}

# Flex Consumption takes the runtime, scale and package from functionAppConfig and has no content share: these
# app settings are refused or ignored there.
NOT_ON_FLEX = {
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTOVERVNET",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
}


def code(path: Path) -> str:
    """A Python file's text without its comments (which may show a pattern without reading a setting)."""
    with path.open("rb") as f:
        tokens = [t for t in tokenize.tokenize(f.readline) if t.type != tokenize.COMMENT]
    source = tokenize.untokenize(tokens)
    return source.decode("utf-8") if isinstance(source, bytes) else str(source)


def settings_read(paths: list[Path]) -> dict[str, set[str]]:
    """Setting name → the files that read it."""
    found: dict[str, set[str]] = {}
    for path in paths:
        source = code(path)
        for pattern in [*READS, CONNECTION]:
            for name in re.findall(pattern, source):
                found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def connections(paths: list[Path]) -> set[str]:
    return {name for p in paths for name in re.findall(CONNECTION, code(p))}


def test_the_scan_finds_the_settings_it_should() -> None:
    """A guard on the patterns: settings read each way are found."""
    read = settings_read(SOURCES)
    assert {
        "AUTH_AUDIENCE",
        "SIMGATE_TARGETS",
        "AZURE_CLIENT_ID",
        "SIMGATE_RECONCILE_SCHEDULE",
        "AzureWebJobsStorage__accountName",
        "SIMGATE_LOST_AFTER_MINUTES",
    } <= set(read)
    assert connections(SOURCES) == {"AzureWebJobsStorage"}


def test_every_setting_the_code_reads_is_set_by_the_template() -> None:
    set_by_template = set(bicep.app_settings())
    missing = {
        name: sorted(files)
        for name, files in settings_read(SOURCES).items()
        if name not in set_by_template and name not in LOCAL_ONLY
    }
    assert missing == {}, (
        "set these in main.bicep's appSettings (or list them in LOCAL_ONLY with the reason)"
    )


def test_every_setting_the_template_sets_is_read() -> None:
    """No stale setting: each is read by the code or by the host (HOST_ONLY says why)."""
    read = settings_read(SOURCES)
    assert {n for n in bicep.app_settings() if n not in read and n not in HOST_ONLY} == set()
    assert set(HOST_ONLY) <= set(bicep.app_settings())


def test_local_only_settings_stay_out_of_azure() -> None:
    assert set(LOCAL_ONLY) & set(bicep.app_settings()) == set()
    assert set(LOCAL_ONLY) <= set(settings_read(SOURCES)), (
        "a LOCAL_ONLY entry the code no longer reads"
    )


def test_trigger_connections_are_identity_based() -> None:
    settings = bicep.app_settings()
    for name in connections(SOURCES):
        assert name not in settings, f"{name} would be a connection string"
        assert settings[f"{name}__credential"] == "'managedidentity'"
        assert {f"{name}__accountName", f"{name}__clientId", f"{name}__queueServiceUri"} <= set(
            settings
        )


def test_secrets_are_key_vault_references() -> None:
    settings = bicep.app_settings()
    assert settings["SIMGATE_TARGETS"].startswith(
        "'@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName="
    )
    loop = bicep.block(bicep.text(bicep.MAIN), "var sshKeySettings = [")
    assert (
        "value: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${key.secret})'" in loop
    )
    for path, names in bicep.ssh_key_settings().items():
        assert names, f"{path.name} gives no SSH key setting"
        assert not names & set(settings), (
            f"{path.name}: an SSH key setting would replace a fixed one"
        )


def test_no_setting_flex_consumption_refuses() -> None:
    names = set(bicep.app_settings()) | {n for s in bicep.ssh_key_settings().values() for n in s}
    assert names & NOT_ON_FLEX == set()


def test_no_storage_key_anywhere() -> None:
    for path in bicep.templates() + bicep.parameter_files():
        source = bicep.text(path)
        assert "listKeys" not in source, path.name
        assert "AccountKey" not in source, path.name
    storage = bicep.text(bicep.BICEP_DIR / "modules" / "storage.bicep")
    for line in (
        "allowSharedKeyAccess: false",
        "supportsHttpsTrafficOnly: true",
        "minimumTlsVersion: 'TLS1_2'",
        "allowBlobPublicAccess: false",
        "defaultToOAuthAuthentication: true",
    ):
        assert line in storage
    app = bicep.text(bicep.BICEP_DIR / "modules" / "functionapp.bicep")
    for line in (
        "httpsOnly: true",
        "minTlsVersion: '1.2'",
        "ftpsState: 'Disabled'",
        "type: 'UserAssignedIdentity'",
        "keyVaultReferenceIdentity: identityId",
        "name: 'python'",
        "version: '3.11'",
        "name: 'FC1'",
    ):
        assert line in app


def test_queue_and_table_names_match_the_code() -> None:
    main = bicep.text(bicep.MAIN)
    assert f"var dispatchQueueName = '{DISPATCH_QUEUE}'" in main
    assert "name: '${dispatchQueueName}-poison'" in bicep.text(
        bicep.BICEP_DIR / "modules" / "storage.bicep"
    )
    assert "var jobsTableName = 'jobs'" in main
    assert "var studiesTableName = 'studies'" in main
    assert 'env("SIMGATE_STUDIES_TABLE", "studies")' in (ROOT / "core" / "config.py").read_text(
        encoding="utf-8"
    )
    assert 'env("SIMGATE_JOBS_TABLE", "jobs")' in (ROOT / "core" / "config.py").read_text(
        encoding="utf-8"
    )


def test_every_environment_sets_the_required_parameters() -> None:
    declared = bicep.params(bicep.text(bicep.MAIN))
    required = {name for name, p in declared.items() if not p.has_default}
    files = bicep.parameter_files()
    assert {p.name for p in files} >= {"main.dev.bicepparam", "main.prod.bicepparam"}
    for path in files:
        source = bicep.text(path)
        assert "using './main.bicep'" in source
        given = bicep.assigned_params(source)
        assert required <= given, f"{path.name} lacks {sorted(required - given)}"
        assert given <= set(declared), f"{path.name} sets unknown {sorted(given - set(declared))}"
