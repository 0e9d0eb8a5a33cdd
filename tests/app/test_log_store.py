"""The log as stored rows (adapters/log_store.py): read with positions, copied verbatim into
another store with the same positions, refused out of order, and aggregates as they were at a
position (Registry.aggregate_at)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from adapters.log_store import LoggedEvent, LogOrderError, log_store_for, read_all
from config.bootstrap import bootstrap
from config.settings import Settings
from domain.context import RequestContext
from domain.repository import Repository

pytestmark = pytest.mark.both_databases

CTX = RequestContext("ci", "req")


def test_read_returns_every_event_in_order_with_its_position(services):
    head = services.log_store.head()
    events = list(read_all(services.log_store))
    assert head > 0 and len(events) > 0
    assert [e.position for e in events] == sorted({e.position for e in events})
    assert events[-1].position == head
    assert list(read_all(services.log_store, after=events[1].position, up_to=events[3].position)) == events[2:4]


def test_json_form_round_trips_and_malformed_input_is_a_value_error(services):
    event = services.log_store.read(0, 1)[0]
    assert LoggedEvent.from_json(event.to_json()) == event
    for bad in ({}, {**event.to_json(), "position": "1"}, {**event.to_json(), "state": "%%%"},
                {**event.to_json(), "originator_id": "nope"}, {**event.to_json(), "originator_version": True}):
        with pytest.raises(ValueError):
            LoggedEvent.from_json(bad)


def test_hash_chain_changes_when_an_event_changes(services):
    first, second = services.log_store.read(0, 2)
    chain = second.digest(first.digest(""))
    assert replace(second, state=second.state + b" ").digest(first.digest("")) != chain
    assert first.digest(second.digest("")) != chain


def test_a_copy_with_the_same_positions_rebuilds_the_same_state(services, settings, tmp_path, database,
                                                                request):
    services.registry.change_repository("library/app", CTX, lambda repo: None)
    source = list(read_all(services.log_store))
    target_settings = _empty_settings(settings, tmp_path, database, request)
    empty = _empty_store(target_settings)
    request.addfinalizer(empty.close)
    target = log_store_for(empty.recorder)
    with pytest.raises(LogOrderError):
        target.append_verbatim([next(e for e in source if e.originator_version > 1)])  # no version 1 before it
    with pytest.raises(LogOrderError):
        target.append_verbatim(list(reversed(source[:2])))
    assert target.head() == 0  # nothing was inserted
    target.append_verbatim(source[:10])
    with pytest.raises(LogOrderError):
        target.append_verbatim(source[5:12])  # positions at or below the head
    target.append_verbatim(source[10:])
    assert list(read_all(target)) == source
    copy = bootstrap(target_settings)
    try:
        copy.projections.catch_up()
        assert copy.access.project("library") is not None
        assert copy.registry.get_repository("library/app") is not None
        # the copy's own writes continue the log after the copied positions
        position = copy.registry.change_repository("library/other", CTX, lambda repo: None)
        assert position > source[-1].position
    finally:
        copy.close()


def test_aggregate_at_a_position_is_the_aggregate_as_it_was(services):
    name = "library/travel"
    services.registry.change_repository(name, CTX, lambda repo: None)
    before = services.log_store.head()
    services.admin.create_project("later", False, CTX)
    repo_id = Repository.create_id(name)
    assert services.registry.aggregate_at(repo_id, before) is not None
    assert services.registry.aggregate_at(repo_id, before - 1) is None
    assert services.log_store.version_at(repo_id, before) == 1


def _empty_settings(settings: Settings, tmp_path, database: str, request) -> Settings:
    if database == "postgres":
        pg = request.getfixturevalue("postgres_server")
        dsn = pg.create_database(durable=False)
        request.addfinalizer(lambda: pg.drop_database(dsn))
        return replace(settings, data_dir=tmp_path / "copy",
                       database=Settings.from_env({"PORTLOG_DATABASE_URL": dsn}).database)
    (tmp_path / "copy").mkdir()
    return replace(settings, data_dir=tmp_path / "copy", database=Settings(data_dir=tmp_path / "copy").database)


def _empty_store(settings: Settings):
    """An empty event store (its tables created), without the first start's events."""
    from eventsourcing.application import Application

    class Empty(Application):
        name = "portlog"

    return Empty(env=settings.event_store_env)
