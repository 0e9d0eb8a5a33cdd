"""Tag retention through Harbor's API (/api/v2.0/retentions…), driven by the unmodified `harborapi`
client over ASGI and by the bodies the Terraform provider sends: the policy read back as it was
written, the project's `retention_id`, a dry run whose task log lists exactly what the real run
then deletes, executions and tasks, permissions, and every refusal of what Portlog would
otherwise silently ignore."""

from __future__ import annotations

import json
import time

import pytest
from harborapi.client import model_to_dict
from harborapi.exceptions import NotFound
from harborapi.models import (
    RetentionPolicy,
    RetentionPolicyScope,
    RetentionRule,
    RetentionRuleTrigger,
    RetentionSelector,
)

from tests.support.auth import PASSWORD, create_user, grant
from tests.support.harbor import harbor_errors, id_of
from tests.support.oci import OCI_MANIFEST, digest_of, image_manifest, push_blob, push_image

pytestmark = [pytest.mark.both_databases, pytest.mark.anyio,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:harborapi")]

RETENTIONS = "/api/v2.0/retentions"




def project_id(client, name: str = "team") -> int:
    return client.get(f"/api/v2.0/projects/{name}").json()["project_id"]


def harbor_rule(template: str = "latestPushedK", param: int | None = 2, tags: str = "v*",
                repositories: str = "**", untagged: bool = True, tag_decoration: str = "matches",
                repository_decoration: str = "repoMatches", **fields) -> RetentionRule:
    return RetentionRule(
        disabled=False, action="retain", template=template,
        params={template: param} if param is not None else {},
        tag_selectors=[RetentionSelector(kind="doublestar", decoration=tag_decoration, pattern=tags,
                                         extras=json.dumps({"untagged": untagged}, separators=(",", ":")))],
        scope_selectors={"repository": [RetentionSelector(kind="doublestar", decoration=repository_decoration,
                                                          pattern=repositories)]}, **fields)


def harbor_policy(ref: int, rules: list[RetentionRule], cron: str = "") -> RetentionPolicy:
    return RetentionPolicy(algorithm="or", rules=rules, scope=RetentionPolicyScope(level="project", ref=ref),
                           trigger=RetentionRuleTrigger(kind="Schedule", settings={"cron": cron}))


def push_untagged(client, name: str, seed: str) -> str:
    config, layer = json.dumps({"seed": seed}).encode(), f"layer-{seed}".encode()
    for blob in (config, layer):
        push_blob(client, name, blob)
    manifest = image_manifest(config, [layer])
    response = client.put(f"/v2/{name}/manifests/{digest_of(manifest)}", content=manifest,
                          headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return digest_of(manifest)


def push_releases(client, name: str, tags: list[str]) -> dict[str, str]:
    digests = {}
    for tag in tags:
        digests[tag] = push_image(client, name, tag, seed=f"{name}-{tag}")[0]
        time.sleep(0.01)  # distinct push times
    return digests


def tags_of(client, name: str) -> list[str]:
    return client.get(f"/v2/{name}/tags/list").json()["tags"]


def manifest_exists(client, name: str, digest: str) -> bool:
    return client.head(f"/v2/{name}/manifests/{digest}").status_code == 200


def comparable(rule: RetentionRule) -> dict:
    """A rule as written: what the server numbers (id, priority) left out."""
    return {key: value for key, value in model_to_dict(rule).items() if key not in ("id", "priority")}


# The whole life of a policy, as a harborapi user lives it


async def test_policy_lifecycle_dry_run_and_real_run(harbor, client):
    untagged = push_untagged(client, "team/app", "old")
    time.sleep(0.01)
    digests = push_releases(client, "team/app", ["v0", "v1", "v2", "v3", "dev"])
    push_releases(client, "team/other", ["v0"])
    team = (await harbor.get_project("team")).project_id
    with pytest.raises(NotFound):
        await harbor.get_project_retention_id("team")

    # Keep the two most recently pushed of the artifacts tagged v* or untagged, in every repository.
    rule = harbor_rule("latestPushedK", 2, tags="v*", untagged=True)
    location = await harbor.create_retention_policy(harbor_policy(team, [rule]))
    retention_id = id_of(location)
    assert location == f"{RETENTIONS}/{team}" and retention_id == team
    assert await harbor.get_project_retention_id("team") == retention_id
    assert (await harbor.get_project(team)).metadata.retention_id == str(retention_id)

    policy = await harbor.get_retention_policy(retention_id)
    assert (policy.id, policy.algorithm, policy.scope.level, policy.scope.ref) == (team, "or", "project", team)
    assert policy.trigger.kind == "Schedule" and policy.trigger.settings == {"cron": ""}
    assert [comparable(r) for r in policy.rules] == [comparable(rule)]
    assert client.get("/api/v1/projects/team/retention").json()["rules"] == [{
        "template": "latestPushedK", "param": 2, "repositories": "**", "exclude_repositories": False,
        "tags": "v*", "exclude_tags": False, "untagged": True, "disabled": False}]

    policy.trigger = RetentionRuleTrigger(kind="Schedule", settings={"cron": "0 0 3 * * *"})
    await harbor.update_retention_policy(retention_id, policy)
    changed = await harbor.get_retention_policy(retention_id)
    assert changed.trigger.settings == {"cron": "0 0 3 * * *"}
    assert [comparable(r) for r in changed.rules] == [comparable(rule)]
    assert client.get("/api/v1/projects/team/retention").json()["cron"] == "0 0 3 * * *"

    # A dry run: its one task (team/other keeps all it has) lists what would go; nothing goes.
    doomed = {untagged, digests["v0"], digests["v1"], digests["dev"]}
    dry = id_of(await harbor.start_retention_execution(retention_id, dry_run=True))
    [task] = await harbor.get_retention_tasks(retention_id, dry)
    assert (task.execution_id, task.repository, task.status, task.total, task.retained) == (dry, "app", "Success", 6, 2)
    log = await harbor.get_retention_execution_task_log(retention_id, dry, task.id)
    assert {line.split("@")[1].split()[0] for line in log.splitlines() if line.startswith("would delete")} == doomed
    assert digests["v3"] not in log and digests["v2"] not in log
    assert tags_of(client, "team/app") == ["dev", "v0", "v1", "v2", "v3"]
    assert manifest_exists(client, "team/app", untagged)

    # The real run deletes exactly those.
    real = id_of(await harbor.start_retention_execution(retention_id, dry_run=False))
    [task] = await harbor.get_retention_tasks(retention_id, real)
    assert (task.repository, task.total, task.retained) == ("app", 6, 2)
    log = await harbor.get_retention_execution_task_log(retention_id, real, task.id)
    assert {line.split("@")[1].split()[0] for line in log.splitlines() if line.startswith("deleted")} == doomed
    assert tags_of(client, "team/app") == ["v2", "v3"] and tags_of(client, "team/other") == ["v0"]
    assert not any(manifest_exists(client, "team/app", digest) for digest in doomed)

    executions = await harbor.get_retention_executions(retention_id)
    assert [(e.id, e.policy_id, e.status, e.trigger, e.dry_run) for e in executions] == [
        (real, team, "Success", "MANUAL", False), (dry, team, "Success", "MANUAL", True)]
    assert all(e.start_time and e.end_time for e in executions)
    await harbor.stop_retention_execution(retention_id, real)  # finished: nothing happens
    assert (await harbor.get_retention_executions(retention_id))[0].status == "Success"

    await harbor.delete_retention_policy(retention_id)
    with pytest.raises(NotFound):
        await harbor.get_retention_policy(retention_id)
    with pytest.raises(NotFound):
        await harbor.get_project_retention_id("team")
    assert client.get("/api/v1/projects/team/retention").status_code == 404
    assert len(await harbor.get_retention_executions(retention_id)) == 2  # the history stays


async def test_metadata_lists_what_portlog_accepts(harbor):
    metadata = await harbor.get_retention_metadata()
    assert [t.rule_template for t in metadata.templates] == [
        "latestPushedK", "latestPulledN", "nDaysSinceLastPush", "nDaysSinceLastPull", "always"]
    assert [(p.type, p.unit, p.required) for p in metadata.templates[2].params] == [("int", "DAYS", True)]
    assert metadata.templates[4].params == []
    assert [(s.kind, s.decorations) for s in metadata.tag_selectors] == [("doublestar", ["matches", "excludes"])]
    assert [(s.kind, s.decorations) for s in metadata.scope_selectors] == [
        ("doublestar", ["repoMatches", "repoExcludes"])]


def test_tasks_count_what_a_run_spared(client):
    digests = push_releases(client, "team/app", ["v0", "v1", "v2"])
    client.post("/api/v1/projects/team/immutable-tag-rules", json={"tags": "v0"}).raise_for_status()
    team = project_id(client)
    body = model_to_dict(harbor_policy(team, [harbor_rule("latestPushedK", 1, tags="**")]))
    assert client.post(RETENTIONS, json=body).status_code == 201
    started = client.post(f"{RETENTIONS}/{team}/executions", json={"dry_run": False})
    assert started.status_code == 201 and started.text == ""
    execution = id_of(started.headers["Location"])
    assert started.headers["Location"] == f"{RETENTIONS}/{team}/executions/{execution}"
    [task] = client.get(f"{RETENTIONS}/{team}/executions/{execution}/tasks").json()
    assert (task["total"], task["retained"], task["job_id"]) == (3, 2, client.get(
        f"/api/v1/projects/team/retention/runs/{execution}").json()["run"])
    log = client.get(f"{RETENTIONS}/{team}/executions/{execution}/tasks/{task['id']}")
    assert log.headers["Content-Type"].startswith("text/plain")
    assert f"deleted team/app@{digests['v1']} (tags: v1)" in log.text
    assert f"kept team/app@{digests['v0']} (tags: v0): " in log.text and "immutable" in log.text
    assert client.get(f"{RETENTIONS}/{team}/executions/{execution}/tasks/9").status_code == 404
    assert client.get(f"{RETENTIONS}/{team}/executions/999999/tasks").status_code == 404


# Terraform's harbor_retention_policy


def test_terraform_provider_bodies(client):
    """As the provider's GetRententionBody writes them, and its delete: a PUT with no rules."""
    team = project_id(client)
    body = {"algorithm": "or", "scope": {"level": "project", "ref": team},
            "trigger": {"kind": "Schedule", "references": {}, "settings": {"cron": "0 0 0 * * *"}},
            "rules": [{"disabled": False, "action": "retain", "template": "nDaysSinceLastPull",
                       "params": {"nDaysSinceLastPull": 30},
                       "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoExcludes",
                                                           "pattern": "scratch/**"}]},
                       "tag_selectors": [{"kind": "doublestar", "decoration": "excludes", "pattern": "dev-*",
                                          "extras": "{\"untagged\":true}"}]}]}
    created = client.post(RETENTIONS, json=body)
    assert created.status_code == 201, created.text
    resource_id = created.headers["Location"].removeprefix("/api/v2.0")
    assert resource_id == f"/retentions/{team}"
    # Harbor's `excludes` with untagged:true leaves untagged artifacts out; read back as written.
    assert client.get("/api/v1/projects/team/retention").json()["rules"][0] | {"param": None} == {
        "template": "nDaysSinceLastPull", "param": None, "repositories": "scratch/**", "exclude_repositories": True,
        "tags": "dev-*", "exclude_tags": True, "untagged": False, "disabled": False}
    read = client.get(f"{RETENTIONS}/{team}").json()
    assert read["trigger"]["settings"]["cron"] == "0 0 0 * * *"
    assert [{k: r[k] for k in ("template", "params", "tag_selectors", "scope_selectors")} for r in read["rules"]] == [
        {k: body["rules"][0][k] for k in ("template", "params", "tag_selectors", "scope_selectors")}]

    # A second create fails; the provider then PUTs to the project's retention_id.
    assert client.post(RETENTIONS, json=body).status_code == 409
    metadata = client.get(f"/api/v2.0/projects/{team}").json()["metadata"]
    assert metadata["retention_id"] == str(team)
    assert client.put(f"{RETENTIONS}/{metadata['retention_id']}", json=body).status_code == 200

    deleted = client.put(f"{RETENTIONS}/{team}", json={
        "algorithm": "or", "scope": {"level": "project", "ref": team}, "id": team, "rules": [],
        "trigger": {"kind": "Schedule", "references": {}, "settings": {"cron": ""}}})
    assert deleted.status_code == 200, deleted.text
    read = client.get(f"{RETENTIONS}/{team}").json()
    assert (read["rules"], read["trigger"]["settings"]["cron"]) == ([], "")


def test_extras_and_portlog_policies_read_as_harbor_would(client):
    """No extras selects untagged artifacts (Harbor's default), "{}" does not; a policy set through
    Portlog's API reads back in Harbor's shape, its five-field cron with seconds."""
    team = project_id(client)
    rule = model_to_dict(harbor_rule("always", None, tags="release-*"))
    for extras, untagged in ((None, True), ("", True), ("{}", False), ('{"untagged":false}', False)):
        selector = {k: v for k, v in rule["tag_selectors"][0].items() if k != "extras"}
        body = model_to_dict(harbor_policy(team, []))
        body["rules"] = [{**rule, "tag_selectors": [selector | ({"extras": extras} if extras is not None else {})]}]
        client.delete(f"{RETENTIONS}/{team}")
        assert client.post(RETENTIONS, json=body).status_code == 201
        assert client.get("/api/v1/projects/team/retention").json()["rules"][0]["untagged"] is untagged, extras

    client.put("/api/v1/projects/team/retention", json={"cron": "30 2 * * *", "rules": [
        {"template": "latestPulledN", "param": 5, "repositories": "web/**", "exclude_tags": True, "tags": "tmp-*"}]}
               ).raise_for_status()
    read = client.get(f"{RETENTIONS}/{team}").json()
    assert read["trigger"] == {"kind": "Schedule", "settings": {"cron": "0 30 2 * * *"}}
    [harbor] = read["rules"]
    assert (harbor["template"], harbor["params"], harbor["action"], harbor["disabled"]) == (
        "latestPulledN", {"latestPulledN": 5}, "retain", False)
    assert harbor["tag_selectors"] == [{"kind": "doublestar", "decoration": "excludes", "pattern": "tmp-*",
                                        "extras": '{"untagged":true}'}]  # untagged left out, Harbor's way
    assert harbor["scope_selectors"] == {"repository": [{"kind": "doublestar", "decoration": "repoMatches",
                                                         "pattern": "web/**"}]}
    [project] = [p for p in client.get("/api/v2.0/projects").json() if p["name"] == "team"]
    assert project["metadata"]["retention_id"] == str(team)
    assert "retention_id" not in client.get("/api/v2.0/projects/race").json()["metadata"]


# Refusals and permissions


def test_bad_policies_are_refused(client):
    team, race = project_id(client), project_id(client, "race")
    good = model_to_dict(harbor_policy(team, [harbor_rule()]))
    good_rule = good["rules"][0]

    def refusal(body: dict, method: str = "POST", path: str = RETENTIONS, status: int = 400) -> str:
        response = client.request(method, path, json=body)
        [(code, message)] = harbor_errors(response)
        assert response.status_code == status, (body, response.text)
        assert code == {400: "BAD_REQUEST", 404: "NOT_FOUND", 409: "CONFLICT"}[status]
        return message

    def with_rule(**changes) -> dict:
        return {**good, "rules": [{**good_rule, **changes}]}

    tag, repository = good_rule["tag_selectors"][0], good_rule["scope_selectors"]["repository"][0]
    assert "algorithm 'and'" in refusal({**good, "algorithm": "and"})
    assert "project-level" in refusal({**good, "scope": {"level": "system", "ref": 0}})
    assert "invalid project id" in refusal({**good, "scope": {"level": "project", "ref": "team"}})
    assert "action 'delete'" in refusal(with_rule(action="delete"))
    assert "template 'latestActiveK'" in refusal(with_rule(template="latestActiveK", params={"latestActiveK": 3}))
    assert "missing required parameter" in refusal(with_rule(params={}))
    assert "unsupported params 'latestPulledN'" in refusal(with_rule(params={"latestPushedK": 2, "latestPulledN": 1}))
    assert "whole number" in refusal(with_rule(params={"latestPushedK": -1}))
    assert "whole number" in refusal(with_rule(params={"latestPushedK": "2"}))
    assert "takes none" in refusal(with_rule(template="always", params={"always": 1}))
    assert "exactly one selector" in refusal(with_rule(tag_selectors=[tag, tag]))
    assert "exactly one selector" in refusal(with_rule(tag_selectors=[]))
    assert "exactly one selector" in refusal(with_rule(scope_selectors={"repository": [repository, repository]}))
    assert "repository selector only" in refusal(with_rule(scope_selectors={"namespace": [repository]}))
    assert "kind 'label'" in refusal(with_rule(tag_selectors=[{**tag, "kind": "label"}]))
    assert "kind 'regexp'" in refusal(with_rule(scope_selectors={"repository": [{**repository, "kind": "regexp"}]}))
    assert "decoration 'repoMatches'" in refusal(with_rule(tag_selectors=[{**tag, "decoration": "repoMatches"}]))
    assert "extras" in refusal(with_rule(tag_selectors=[{**tag, "extras": "untagged"}]))
    assert "extras" in refusal(with_rule(tag_selectors=[{**tag, "extras": '{"untagged":true,"labels":[]}'}]))
    assert "no extras" in refusal(with_rule(scope_selectors={"repository": [{**repository, "extras": "{}"}]}))
    assert "invalid tag pattern" in refusal(with_rule(tag_selectors=[{**tag, "pattern": "v{1"}]))
    assert "needs a pattern" in refusal(with_rule(tag_selectors=[{**tag, "pattern": ""}]))
    assert "15 rules" in refusal({**good, "rules": [good_rule] * 16})
    assert "trigger.kind" in refusal({**good, "trigger": {"kind": "Event", "settings": {}}})
    assert "cron" in refusal({**good, "trigger": {"kind": "Schedule", "settings": {"cron": "61 * * * * *"}}})
    assert "project #999999 not found" in refusal({**good, "scope": {"level": "project", "ref": 999999}},
                                                  status=404)
    assert "the same as rule 1" in refusal({**good, "rules": [good_rule, good_rule]}, status=409)
    assert "retention policy" in refusal(good, "PUT", f"{RETENTIONS}/{team}", status=404)  # none yet
    assert client.get("/api/v1/projects/team/retention").status_code == 404  # nothing was set

    assert client.post(RETENTIONS, json=good).status_code == 201
    assert "already has retention policy" in refusal(good, status=409)
    assert "cannot move" in refusal({**good, "scope": {"level": "project", "ref": race}}, "PUT",
                                    f"{RETENTIONS}/{team}")
    assert "is not the retention id" in refusal({**good, "id": race}, "PUT", f"{RETENTIONS}/{team}")
    dry = client.post(f"{RETENTIONS}/{team}/executions", json={"dry_run": True})
    execution = f"{RETENTIONS}/{team}/executions/{id_of(dry.headers['Location'])}"
    assert "action should be 'stop'" in refusal({"action": "start"}, "PATCH", execution)
    assert "dry_run" in refusal({"dry_run": "yes"}, path=f"{RETENTIONS}/{team}/executions")
    assert client.patch(execution, json={"action": "stop"}).status_code == 200
    assert client.patch(f"{RETENTIONS}/{race}/executions/{id_of(dry.headers['Location'])}",
                        json={"action": "stop"}).status_code == 404  # another project's
    for path in (f"{RETENTIONS}/999999", f"{RETENTIONS}/{race}", f"{RETENTIONS}/abc", f"{RETENTIONS}/\u00b2",
                 f"{RETENTIONS}/{10 ** 30}", f"{RETENTIONS}/{team}/executions/{10 ** 30}/tasks"):
        assert client.get(path).status_code == 404, path
    assert client.post(f"{RETENTIONS}/{race}/executions", json={}).status_code == 404  # no policy


def test_maintainers_manage_retention_developers_cannot(client):
    for user, role in (("maint", "maintainer"), ("dev", "developer")):
        create_user(client, user)
        grant(client, "team", user, role)
    team = project_id(client)
    policy = model_to_dict(harbor_policy(team, [harbor_rule()]))
    maint, dev = ("maint", PASSWORD), ("dev", PASSWORD)

    assert client.post(RETENTIONS, json=policy, auth=dev).status_code == 403
    assert client.post(RETENTIONS, json=policy, auth=maint).status_code == 201
    assert client.get("/api/v2.0/retentions/metadatas", auth=dev).status_code == 200  # any signed-in user
    assert client.get("/api/v2.0/retentions/metadatas", auth=None).status_code == 401
    for method, path, body in (("GET", f"{RETENTIONS}/{team}", None), ("PUT", f"{RETENTIONS}/{team}", policy),
                               ("DELETE", f"{RETENTIONS}/{team}", None),
                               ("POST", f"{RETENTIONS}/{team}/executions", {"dry_run": True}),
                               ("GET", f"{RETENTIONS}/{team}/executions", None)):
        response = client.request(method, path, json=body, auth=dev)
        assert response.status_code == 403 and harbor_errors(response)[0][0] == "FORBIDDEN", (method, path)
        assert client.request(method, path, json=body, auth=None).status_code == 401
    started = client.post(f"{RETENTIONS}/{team}/executions", json={"dry_run": True}, auth=maint)
    assert started.status_code == 201
    execution = id_of(started.headers["Location"])
    assert client.get(f"{RETENTIONS}/{team}/executions/{execution}/tasks", auth=dev).status_code == 403
    assert client.get(f"{RETENTIONS}/{team}/executions", auth=maint).json()[0]["operator"] == "maint"
    # A project the caller cannot see: a refusal, not a 404 that would tell it exists.
    assert client.get(f"{RETENTIONS}/{project_id(client, 'race')}", auth=maint).status_code == 403
    assert client.delete(f"{RETENTIONS}/{team}", auth=maint).status_code == 200


def test_executions_are_paged(client):
    team = project_id(client)
    client.post(RETENTIONS, json=model_to_dict(harbor_policy(team, [harbor_rule()]))).raise_for_status()
    ids = [id_of(client.post(f"{RETENTIONS}/{team}/executions", json={"dry_run": True}).headers["Location"])
           for _ in range(3)]
    first = client.get(f"{RETENTIONS}/{team}/executions?page=1&page_size=2")
    assert first.headers["X-Total-Count"] == "3" and 'rel="next"' in first.headers["Link"]
    second = client.get(f"{RETENTIONS}/{team}/executions?page=2&page_size=2")
    assert [e["id"] for e in first.json() + second.json()] == ids[::-1]
    assert client.get(f"{RETENTIONS}/{team}/executions/{ids[0]}/tasks").json() == []  # nothing to delete
