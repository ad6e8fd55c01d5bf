"""Plugins load through real entry points and are validated as they load."""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path

import pytest

from hookruntime import HookRuntime, PluginError, SimplePlugin, Topic
from hookruntime.plugins import build_catalog, discover
from hookruntime.profiles import PROFILES

SCHEMA = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}


def install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, target: str, module: str = ""
) -> None:
    """Install a distribution with one ``hookruntime.plugins`` entry point on sys.path."""
    dist = tmp_path / f"{name}_dist-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-dist\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[hookruntime.plugins]\n{name} = {target}\n")
    if module:
        (tmp_path / f"{name}_mod.py").write_text(textwrap.dedent(module))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()


def test_built_in_plugins_load_through_entry_points() -> None:
    names = [p.name for p in discover()]
    assert names == ["booking", "identity", "verification", "workforce"]


def test_a_third_party_plugin_is_installed_like_a_built_in_one(tmp_path, monkeypatch) -> None:
    install(
        tmp_path,
        monkeypatch,
        "crm",
        "crm_mod:plugin",
        """
        from hookruntime import SimplePlugin, Topic
        plugin = SimplePlugin("crm", [Topic(
            name="crm.contact_merged", mode="queued",
            schema={"type": "object", "required": ["id"]}, sample={"id": "c1"},
            scopes=("contacts",))])
    """,
    )
    catalog = HookRuntime().catalog
    assert catalog["crm.contact_merged"].plugin == "crm"
    assert "contacts" in catalog.scopes()


def test_a_plugin_that_cannot_import_fails_with_its_name(tmp_path, monkeypatch) -> None:
    install(tmp_path, monkeypatch, "broken", "does_not_exist_mod:plugin")
    with pytest.raises(PluginError, match="plugin 'broken': cannot import"):
        HookRuntime()


def test_a_plugin_without_topics_fails_with_its_name(tmp_path, monkeypatch) -> None:
    install(tmp_path, monkeypatch, "empty", "empty_mod:plugin", "plugin = object()\n")
    with pytest.raises(PluginError, match="plugin 'empty'.*no 'name' and 'topics'"):
        discover()


def test_a_plugin_whose_sample_breaks_its_schema_fails_at_load(tmp_path, monkeypatch) -> None:
    install(
        tmp_path,
        monkeypatch,
        "sloppy",
        "sloppy_mod:plugin",
        """
        from hookruntime import SimplePlugin, Topic
        plugin = SimplePlugin("sloppy", [Topic(
            name="sloppy.thing", mode="queued",
            schema={"type": "object", "required": ["id"]}, sample={"name": "x"})])
    """,
    )
    with pytest.raises(PluginError, match="plugin 'sloppy': sloppy.thing: sample does not fit"):
        HookRuntime()


@pytest.mark.parametrize(
    ("topic", "problem"),
    [
        (Topic("Bad Name", "queued", SCHEMA, {"id": "1"}), "dotted lower-case"),
        (Topic("x.y", "sometimes", SCHEMA, {"id": "1"}), "mode must be"),  # type: ignore[arg-type]
        (Topic("x.y", "blocking", SCHEMA, {"id": "1"}), "needs a deadline"),
        (Topic("x.y", "queued", SCHEMA, {"id": "1"}, deadline=1.0), "has no deadline"),
        (Topic("x.y", "queued", SCHEMA, {"id": "1"}, profile="soap"), "unknown default profile"),
        (
            Topic("x.y", "blocking", SCHEMA, {"id": "1"}, deadline=1, reserved=("id",)),
            "not a JSON Pointer",
        ),
        (Topic("x.y", "queued", {"type": "objekt"}, {"id": "1"}), "invalid JSON schema"),
        (Topic("x.y", "queued", SCHEMA, {"id": 1}), "sample does not fit the schema at id"),
    ],
)
def test_each_invalid_declaration_is_named(topic: Topic, problem: str) -> None:
    with pytest.raises(PluginError, match=f"plugin 'bad': .*{problem}"):
        build_catalog([SimplePlugin("bad", [topic])], PROFILES)


def test_two_plugins_may_not_declare_the_same_topic() -> None:
    topic = Topic("x.y", "queued", SCHEMA, {"id": "1"})
    with pytest.raises(PluginError, match="plugin 'second'.*already declared by 'first'"):
        build_catalog([SimplePlugin("first", [topic]), SimplePlugin("second", [topic])], PROFILES)


def test_a_plugin_may_not_redeclare_a_core_topic() -> None:
    topic = Topic("webhook.test", "queued", SCHEMA, {"id": "1"})
    with pytest.raises(PluginError, match="already declared by 'hookruntime'"):
        build_catalog([SimplePlugin("sneaky", [topic])], PROFILES)


def test_explicit_plugins_replace_discovery() -> None:
    runtime = HookRuntime(
        plugins=[SimplePlugin("only", [Topic("x.y", "queued", SCHEMA, {"id": "1"})])]
    )
    assert sorted(runtime.catalog) == [
        "webhook.created",
        "webhook.deleted",
        "webhook.disabled",
        "webhook.test",
        "webhook.updated",
        "x.y",
    ]


def test_the_example_third_party_plugin_loads(tmp_path, monkeypatch) -> None:
    example = Path(__file__).parents[2] / "examples" / "crm_plugin"
    assert 'crm = "crm_hooks:plugin"' in (example / "pyproject.toml").read_text()
    monkeypatch.syspath_prepend(str(example))
    install(tmp_path, monkeypatch, "crm", "crm_hooks:plugin")
    topic = HookRuntime().catalog["crm.contact_merged"]
    assert topic.plugin == "crm" and topic.scopes == ("contacts",)
