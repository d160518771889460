"""A context is its folder plus one entry in the list of contexts; a rule of the frame it breaks stops the
start with one line naming the context and the rule."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from bus.conformance import NonConformingContext
from shopstream.contexts import CONTEXTS, load
from shopstream.settings import ConfigurationError, Settings

GOOD_MODEL = """
from bus.aggregate import Aggregate
from bus.messages import Command, Event, message


@message
class Open(Command, frozen=True, kw_only=True, tag="{name}.Open"):
    shelf_id: str

    @property
    def aggregate_id(self) -> str:
        return self.shelf_id


{event_decorator}
class Opened(Event, frozen=True, kw_only=True, tag="{event_tag}"):
    shelf_id: str
"""

PROJECTION = """
from bus.batch import BatchedWrites


class Shelves(BatchedWrites):
    name = "{name}.shelves"
    tables = ("{name}.shelves",)

    async def apply(self, conn, envelope, event):
        {body}
"""

INIT = """
from pathlib import Path

from bus.module import ContextModule
from {name}.model import Open
from {name}.projection import Shelves

module = ContextModule(
    name="{module_name}", migrations=Path(__file__).parent, handlers={{Open: None}}, projections=[Shelves()]
)
"""
WRITES = 'await conn.execute("INSERT INTO {name}.shelves (shelf_id) VALUES ($1)", envelope.aggregate_id)'


def write_context(root: Path, **overrides: str) -> str:
    """A context package under `root`, named uniquely (message tags are global); returns its name."""
    name = f"shelf_{uuid.uuid4().hex[:8]}"
    values = {
        "name": name,
        "module_name": name,
        "event_decorator": "@message",
        "event_tag": f"{name}.Opened",
        "body": WRITES.format(name=name),
    } | {k: v.format(name=name) for k, v in overrides.items()}
    package = root / name
    package.mkdir()
    for file, text in (("model.py", GOOD_MODEL), ("projection.py", PROJECTION), ("__init__.py", INIT)):
        (package / file).write_text(textwrap.dedent(text).format(**values))
    return name


@pytest.fixture
def root(tmp_path: Path):
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))


def refusal(name: str) -> str:
    with pytest.raises(NonConformingContext) as refused:
        load((name,))
    message = str(refused.value)
    assert message.startswith(f"context {name}")
    assert "\n" not in message
    return message


def test_the_products_contexts_keep_every_rule():
    assert [m.name for m in load(CONTEXTS)] == ["identity", "catalogue"]


def test_a_conforming_folder_loads(root):
    name = write_context(root)
    (module,) = load((name,))
    assert module.name == name and module.package == name


def test_a_context_is_named_after_its_folder(root):
    name = write_context(root, module_name="other")
    with pytest.raises(NonConformingContext) as refused:
        load((name,))
    assert str(refused.value) == (
        f"context other: its folder is named {name!r}; a context's name is its folder's name"
    )


def test_an_event_without_message_is_refused_before_consumers_dead_letter_it(root):
    name = write_context(root, event_decorator="")
    assert "Opened is not registered; decorate it with @message" in refusal(name)


def test_a_tag_names_its_context(root):
    name = write_context(root, event_tag="elsewhere.Opened")
    assert "tag 'elsewhere.Opened' must start with" in refusal(name)


def test_a_projection_lists_every_table_it_writes(root):
    name = write_context(root, body='await conn.execute("DELETE FROM {name}.archive WHERE id = $1", 1)')
    assert f"writes {name}.archive, which its `tables` does not list" in refusal(name)


def test_a_batched_projection_only_executes(root):
    name = write_context(root, body='await conn.fetchval("SELECT 1 FROM {name}.shelves")')
    assert "apply may only execute statements; it calls fetchval" in refusal(name)


def test_a_missing_package_is_named():
    assert "cannot be imported" in refusal("no_such_context_here")


def test_each_listed_context_has_a_database_url_of_its_own_by_name():
    settings = Settings.from_env(
        {
            "SHOPSTREAM_CONTEXTS": "contexts.identity, tests.messaging.counters",
            "DATABASE_URL": "postgresql://h/shared",
            "COUNTERS_DATABASE_URL": "postgresql://h/counters",
            "CATALOGUE_DATABASE_URL": "postgresql://h/ignored-not-listed",
        }
    )
    assert settings.context_names == ("identity", "counters")
    assert settings.database_url_for("counters") == "postgresql://h/counters"
    assert settings.database_url_for("identity") == "postgresql://h/shared"
    with pytest.raises(ConfigurationError, match=r"^configuration error: SHOPSTREAM_CONTEXTS"):
        Settings.from_env({"SHOPSTREAM_CONTEXTS": "contexts/identity"})


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("notes_table", "refusal_text"),
    [
        (
            "CREATE TABLE board.notes (id text PRIMARY KEY, state jsonb NOT NULL)",
            "table board.notes lacks column(s) version",
        ),
        (
            "CREATE TABLE board.notes (id text PRIMARY KEY, state jsonb NOT NULL, version bigint NOT NULL)",
            "table board.pinned_notes does not exist",
        ),
    ],
)
async def test_tables_the_code_needs_are_checked_after_migrations(
    context_settings, tmp_path, notes_table, refusal_text
):
    from tests.messaging.board import module as board

    (tmp_path / "0001_board.sql").write_text(
        f"CREATE SCHEMA board; SELECT bus.create_outbox('board'); {notes_table};"
    )
    missing = dataclasses.replace(board, migrations=tmp_path, package="tests.messaging.board")
    with pytest.raises(NonConformingContext) as refused:
        await context_settings("tables", [missing])
    assert str(refused.value).startswith("context board: ") and refusal_text in str(refused.value)
