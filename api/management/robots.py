"""Robot accounts (/api/v1/robots…): system level (no project) or project level. The secret
is in the response to creation and refresh only."""

from __future__ import annotations

from starlette.responses import Response

from api.management.common import Call, field, json_response
from api.management.problems import Problem
from domain.administration import robot_expiry
from domain.robot import check_permissions
from projections.access import RobotRow


def robot_json(row: RobotRow) -> dict:
    return {"name": row.name, "project": row.project, "permissions": row.permissions,
            "expires_at": row.expires_at, "disabled": row.disabled, "description": row.description,
            "created_at": row.created_at, "updated_at": row.updated_at}


def list_robots(call: Call) -> Response:
    """Robots of a project (`?project=`), or system robots."""
    project = call.request.query_params.get("project")
    call.require_robot_management(project, "list")
    rows = call.services.access.robots(project=project, level_system=project is None)
    return json_response([robot_json(r) for r in rows])


def create_robot(call: Call) -> Response:
    """Create a robot; the answer holds its secret, shown this once."""
    project = field(call.body, "project", str, required=False)
    call.require_robot_management(project, "create")
    permissions = check_permissions(field(call.body, "permissions", list), project)
    call.require_grantable(permissions)
    duration = field(call.body, "duration_days", int, False)
    call.require_outlived(robot_expiry(duration))
    name, secret, position = call.services.admin.create_robot(
        field(call.body, "name", str), project, permissions, duration,
        field(call.body, "description", str, False, ""), call.context)
    call.settle(position)
    return json_response(robot_json(call.services.access.robot(name)) | {"secret": secret}, 201,
                         {"Location": f"/api/v1/robots/{name}"})


def get_robot(call: Call) -> Response:
    """One robot (never its secret)."""
    row = _robot(call, "read")
    return json_response(robot_json(row))


def update_robot(call: Call) -> Response:
    """Disable or enable a robot, or replace its permissions."""
    row = _robot(call, "update")
    call.require_robot_editable(row.name, row.permissions, row.expires_at)
    admin = call.services.admin
    disabled = field(call.body, "disabled", bool, required=False)
    permissions = field(call.body, "permissions", list, required=False)
    if permissions is not None:
        permissions = check_permissions(permissions, row.project)
        call.require_grantable(permissions)
    position = None
    if disabled is not None:
        position = admin.set_robot_disabled(row.name, disabled, call.context)
    if permissions is not None:
        position = admin.change_robot_permissions(row.name, permissions, call.context)
    call.settle(position)
    return json_response(robot_json(call.services.access.robot(row.name)))


def refresh_secret(call: Call) -> Response:
    """Issue a new secret; the old one stops working."""
    row = _robot(call, "update")
    call.require_robot_editable(row.name, row.permissions, row.expires_at)
    secret, position = call.services.admin.refresh_robot_secret(row.name, call.context)
    call.settle(position)
    return json_response({"name": row.name, "secret": secret})


def delete_robot(call: Call) -> Response:
    """Delete a robot."""
    row = _robot(call, "delete")
    call.settle(call.services.admin.delete_robot(row.name, call.context))
    return Response(status_code=204)


def _robot(call: Call, action: str) -> RobotRow:
    name = call.param("robot")
    row = call.services.access.robot(name)
    call.require_robot_management(row.project if row else None, action)
    if row is None:
        raise Problem(404, "not-found", f"robot {name} not found")
    return row
