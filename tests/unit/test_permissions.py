"""Rules of domain/permissions.py that no role table shows."""

from __future__ import annotations

from domain.permissions import Principal, RobotPermission, permissions_beyond, repository_actions


def robot(project: str, *actions: str) -> Principal:
    return Principal(f"robot${project}+ci", kind="robot",
                     robot_permissions=tuple(RobotPermission(project, "repository", a) for a in actions))


def test_a_robots_push_implies_pull_in_its_projects_only():
    pusher = robot("web", "push")
    assert repository_actions(pusher, "web", False, "web/site") == {"pull", "push"}
    assert repository_actions(pusher, "other", False, "other/site") == set()
    assert repository_actions(robot("*", "push"), "other", False, "other/site") == {"pull", "push"}
    assert repository_actions(robot("web", "pull"), "web", False, "web/site") == {"pull"}


def test_a_push_only_robot_may_hand_on_the_pull_it_implies():
    wanted = [{"project": "web", "resource": "repository", "action": "pull"}]
    assert permissions_beyond(robot("web", "push"), wanted) == []
    assert permissions_beyond(robot("*", "push"), [{**wanted[0], "project": "*"}]) == []
    assert permissions_beyond(robot("web", "pull"), [{**wanted[0], "action": "push"}]) != []
