"""docs/deploy.md against the templates: every setting, parameter, output, resource, role, secret and file it names
exists where it says.

What counts as a name: `code spans` in the text (a setting is UPPER_SNAKE or AzureWebJobs…, a parameter or output is
camelCase, a resource type is Microsoft.X/y, a role is a Storage…/Key Vault…/Monitoring… role, a resource or secret
name is lower-case-with-dashes, a file is a path), the rows of the table of resources, and in the command blocks
the outputs queried, the secrets set, the files deployed and the `key_setting`s of the example targets. The section
on running locally is checked against local.settings.example.json instead of the templates.
"""

from __future__ import annotations

import fnmatch
import json
import re

import pytest

from tests.deploy import bicep
from tests.deploy.test_settings import LOCAL_ONLY

ROOT = bicep.ROOT
GUIDE = ROOT / "docs" / "deploy.md"
LOCAL_HEADING = re.compile(r"^## .*Run locally", re.MULTILINE)
FENCE = re.compile(r"^[ \t]*```[^\n]*\n.*?^[ \t]*```[ \t]*$", re.MULTILINE | re.DOTALL)

SETTING = re.compile(r"^(?:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|AzureWebJobs\w+)$")
CAMEL = re.compile(r"^[a-z]+(?:[A-Z][a-z0-9]*)+$")
RESOURCE_TYPE = re.compile(r"^Microsoft\.\w+/[\w/]+$")
ROLE = re.compile(r"^(?:Storage|Key Vault|Monitoring) [A-Z][\w ]+$")
NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)+$")
COMMANDS = {"ssh-keyscan", "ssh-keygen", "ssh-copy-id"}  # named in the text, not resources
PATH = re.compile(
    r"^[\w.-]+(?:/[\w.-]+)*\.(?:bicep|bicepparam|json|py|md|txt)$|^(?:infra|docs|core|blueprints)/"
)
GENERATED = ("local.settings.json", ".local/", ".venv")  # made by set-up, not in the repository
NOT_RUNTIME = {"docs", "README.md", "pyproject.toml"}  # shipped by Core Tools, not needed to run


def guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def parts() -> tuple[str, str]:
    """The guide before its section on running locally, and that section."""
    text = guide()
    split = LOCAL_HEADING.search(text)
    assert split, "the guide has a '## … Run locally' section"
    return text[: split.start()], text[split.start() :]


def spans(markdown: str) -> list[str]:
    """Inline code spans outside command blocks."""
    return re.findall(r"`([^`\n]+)`", FENCE.sub("", markdown))


def blocks(markdown: str) -> str:
    return "\n".join(FENCE.findall(markdown))


def env_variables() -> set[str]:
    """The environment variables the parameters files read at deployment."""
    return {
        v
        for p in bicep.parameter_files()
        for v in re.findall(r"readEnvironmentVariable\('(\w+)'", bicep.text(p))
    }


def azure_settings() -> set[str]:
    return set(bicep.app_settings()) | {
        n for names in bicep.ssh_key_settings().values() for n in names
    }


def local_settings() -> set[str]:
    example = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))
    return set(example["Values"])


def matches_template(name: str) -> bool:
    """A literal in the templates is `name`, reading `${…}` there and `<…>` here as placeholders."""

    def placeholders(s: str) -> str:
        return re.sub(r"\$\{[^}]*\}|<[^>]*>", "*", s)

    for literal in bicep.all_strings():
        if placeholders(literal) == placeholders(name):
            return True
        fixed = re.sub(r"\$\{[^}]*\}", "", literal)
        if "<" not in name and len(fixed) >= 3 and "${" in literal:
            pattern = "".join(
                r"[\w.-]+" if p.startswith("${") else re.escape(p)
                for p in re.split(r"(\$\{[^}]*\})", literal)
            )
            if re.fullmatch(pattern, name):
                return True
    return False


def test_the_guide_names_settings_the_template_sets() -> None:
    azure, local = parts()
    known = azure_settings() | env_variables() | set(LOCAL_ONLY)
    assert {s for s in spans(azure) if SETTING.match(s)} - known == set()
    assert {s for s in spans(local) if SETTING.match(s)} - (
        local_settings() | azure_settings()
    ) == set()


def test_the_guide_names_parameters_and_outputs_main_bicep_has() -> None:
    main = bicep.text(bicep.MAIN)
    known = set(bicep.params(main)) | bicep.outputs(main)
    assert {s for s in spans(guide()) if CAMEL.match(s)} - known == set()
    queried = set(re.findall(r"properties\.outputs\.(\w+)\.value", blocks(guide())))
    assert queried, "the guide reads the deployment's outputs"
    assert queried - bicep.outputs(main) == set()


def test_the_guide_names_resource_types_and_roles_the_templates_declare() -> None:
    types = {s for s in spans(guide()) if RESOURCE_TYPE.match(s)}
    assert types, "the guide lists the resources"
    assert types - bicep.resource_types() == set()
    roles_module = bicep.text(bicep.BICEP_DIR / "modules" / "roles.bicep")
    roles = {s for s in spans(guide()) if ROLE.match(s)}
    assert len(roles) >= 5
    assert {r for r in roles if r not in roles_module} == set()


def test_the_table_of_resources_matches_the_templates() -> None:
    rows = re.findall(
        r"^\| [^|]+ \| `(Microsoft\.[^`]+)` \| (?:`([^`]+)`)? *\|$", guide(), flags=re.MULTILINE
    )
    assert len(rows) >= 10
    assert {t for t, _ in rows} == bicep.resource_types() - {
        "Microsoft.Web/sites/basicPublishingCredentialsPolicies",
        "Microsoft.Storage/storageAccounts/blobServices",
        "Microsoft.Storage/storageAccounts/queueServices",
        "Microsoft.Storage/storageAccounts/tableServices",
    }
    assert [name for _, name in rows if name and not matches_template(name)] == []


def test_the_guide_names_resources_and_secrets_the_templates_know() -> None:
    named = {s for s in spans(guide()) if NAME.match(s)} - COMMANDS
    assert {"simgate-targets", "cluster-ssh-key", "dispatch-poison"} <= named
    assert {n for n in named if not matches_template(n)} == set()
    secrets = set(re.findall(r"az keyvault secret set [^\n]*--name (\S+)", blocks(guide())))
    assert secrets, "the guide puts secrets into Key Vault"
    assert {s for s in secrets if not matches_template(s)} == set()


def test_the_example_targets_use_the_key_settings_the_template_sets() -> None:
    used = set(re.findall(r'"key_setting": "(\w+)"', blocks(guide())))
    assert used, "the guide shows targets"
    for path, names in bicep.ssh_key_settings().items():
        assert used <= names, f"{path.name} maps no Key Vault secret to {sorted(used - names)}"


def test_the_guide_names_files_that_exist() -> None:
    paths = {
        s for s in spans(guide()) if PATH.match(s) and "<" not in s and not s.startswith(GENERATED)
    }
    deployed = set(re.findall(r"--(?:template-file|parameters) (\S+)", blocks(guide())))
    assert {"infra/bicep/main.bicep", "infra/bicep/main.dev.bicepparam"} <= paths | deployed
    assert {p for p in paths | deployed if not (ROOT / p).exists()} == set()


def test_the_guide_exports_what_the_parameters_files_read() -> None:
    exported = set(re.findall(r"^\s*export (\w+)=", blocks(guide()), flags=re.MULTILINE))
    assert exported == env_variables()


def ignored(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, p.rstrip("/")) for p in patterns)


def test_the_zip_holds_everything_core_tools_would_publish() -> None:
    """The zip command ships every top-level entry that .funcignore (and .gitignore) leave in the package."""
    zipped = re.search(r"^zip -r \S+ (.+?)(?: -x .*)?$", blocks(guide()), flags=re.MULTILINE)
    assert zipped
    listed = set(zipped.group(1).split())
    patterns = [
        line.strip()
        for f in (".funcignore", ".gitignore")
        for line in (ROOT / f).read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    published = {
        p.name
        for p in ROOT.iterdir()
        if not ignored(p.name, patterns) and not p.name.startswith(".")
    } - NOT_RUNTIME  # hidden: tooling
    assert published - listed == set(), "add these to the guide's zip command (or to .funcignore)"
    assert {p for p in listed if not (ROOT / p).exists()} == set()


@pytest.mark.parametrize(
    "markdown",
    [
        "`AUTH_AUDENCE`",
        "`functionAppHost`",
        "`Microsoft.Web/staticSites`",
        "`Storage Blob Data Reader`",
        "`dispatch-poisoned`",
    ],
)
def test_the_checks_catch_a_wrong_name(markdown: str) -> None:
    """A misspelt setting, an unknown output, resource type, role or resource name is caught by the rules above."""
    span = spans(markdown)[0]
    main = bicep.text(bicep.MAIN)
    caught = [
        SETTING.match(span) and span not in azure_settings() | env_variables() | set(LOCAL_ONLY),
        CAMEL.match(span) and span not in set(bicep.params(main)) | bicep.outputs(main),
        RESOURCE_TYPE.match(span) and span not in bicep.resource_types(),
        ROLE.match(span) and span not in bicep.text(bicep.BICEP_DIR / "modules" / "roles.bicep"),
        NAME.match(span) and not matches_template(span),
    ]
    assert any(caught)
