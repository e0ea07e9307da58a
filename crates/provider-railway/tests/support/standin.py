"""A stand-in for Railway's GraphQL API v2, for the provider's tests.

Every request is checked against Railway's published schema (the introspection JSON the
official CLI ships, given as the first argument) with graphql-core: a document that does
not parse or validate, or variables that do not match the operation's declared types, are
answered as Railway's server answers them (HTTP 400, `extensions.code`
GRAPHQL_PARSE_FAILED / GRAPHQL_VALIDATION_FAILED / BAD_USER_INPUT) and recorded in
`rejected`, which every test asserts is empty. Valid documents are executed by graphql-core
against a small stateful fake (the resolvers below), so the fake's answers are checked
against the schema too (a wrong type or an unknown enum value is an execution error).

The fake: one project with environments and services, service instances with variables
and domains, deployments that progress QUEUED -> INITIALIZING -> BUILDING -> DEPLOYING ->
SUCCESS one step per read, and scenarios set through POST /control/* (JSON):
  /control/reset     {"environments": [...], "services": [...], "project_id": ID?}   fresh
                     state (the project's id given, e.g. an example spec's, or a new one)
  /control/variables {"environment": NAME, "service": NAME, "variables": {...}} set as-is
  /control/behaviour {"service": NAME, "mode": "ok"|"stale"|"fail_build"|"crash"|"slow"|
                      "rollback_in_place"|"healthcheck"}
  /control/fault     {"kind": "rate_limit"|"server_error"|"malformed"|"slow"|"hold", "count": N,
                      "retry_after": S, "operation": NAME (only requests of that
                      operation; any when absent)}; "slow" answers normally after S s;
                      "hold" executes the request at once and sends its answer after S s,
                      serving other requests meanwhile
  /control/validate  {"query": DOCUMENT} -> {"errors": [...]}, validation only
  /control/state     (GET) everything, for assertions; `writes` names the service instance
                     (environment and service, by name) of every mutation that wrote one
Prints `listening PORT` on stdout once it serves.
"""

import json
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from graphql import (
    GraphQLError,
    OperationDefinitionNode,
    build_client_schema,
    execute,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

SCHEMA_PATH = sys.argv[1]
with open(SCHEMA_PATH) as f:
    raw = json.load(f)
# assume_valid: graphql-core refuses one deprecation detail of Railway's schema otherwise.
SCHEMA = build_client_schema(raw.get("data", raw), assume_valid=True)

PROGRESSION = ["QUEUED", "INITIALIZING", "BUILDING", "DEPLOYING", "SUCCESS"]
OLD_COMMIT = "0000000000000000000000000000000000000000"

LOCK = threading.RLock()
STATE = {}
CLOCK = [datetime(2026, 1, 1, tzinfo=timezone.utc)]


def now():
    CLOCK[0] += timedelta(seconds=1)
    return CLOCK[0].strftime("%Y-%m-%dT%H:%M:%S.000Z")


def new_id():
    return str(uuid.uuid4())


def reset(environments=("production", "staging"), services=("web", "Postgres"), project_id=None):
    project_id = project_id or new_id()
    envs = {new_id(): name for name in environments}
    svcs = {new_id(): name for name in services}
    STATE.clear()
    STATE.update(
        {
            "project": {"id": project_id, "name": "shop"},
            "environments": envs,
            "services": svcs,
            "variables": {},
            "deployments": [],
            "behaviour": {},
            "faults": [],
            "requests": [],
            "rejected": [],
            "mutations": [],
            # Per mutation that writes a service instance: {mutation, environment, service}.
            "writes": [],
            "upserts": [],
            "created_environments": [],
            # The service instances that exist, `env/service`.
            "instances": set(),
            # Per environment: the changes `environmentCreate` staged, not applied yet.
            "staged": {},
            # Per environment: committed changes being applied (reads until they land).
            "applying": {},
            "commits": [],
        }
    )
    for env_id, env_name in envs.items():
        for svc_id, svc_name in svcs.items():
            key = f"{env_id}/{svc_id}"
            STATE["instances"].add(key)
            if svc_name == "Postgres":
                STATE["variables"][key] = postgres_variables(env_name)
            else:
                STATE["variables"][key] = {"PORT": "8080"}
                STATE["deployments"].append(
                    deployment_record(svc_id, env_id, OLD_COMMIT, "SUCCESS", [])
                )


def postgres_variables(env_name):
    """A Railway Postgres instance's own variables: each environment has its own database."""
    return {
        "DATABASE_URL": f"postgresql://postgres:canary-private-{env_name}@postgres.railway.internal:5432/railway",
        "DATABASE_PUBLIC_URL": f"postgresql://postgres:canary-public-{env_name}@proxy.rlwy.net:4{len(env_name)}21/railway",
        "PGPASSWORD": f"canary-{env_name}",
    }


def deployment_record(service_id, environment_id, commit, status, steps, image=None):
    return {
        "id": new_id(),
        "serviceId": service_id,
        "environmentId": environment_id,
        "projectId": STATE["project"]["id"],
        "status": status,
        "steps": list(steps),
        "createdAt": now(),
        "canRollback": status == "SUCCESS",
        "meta": {
            "commitHash": commit,
            "image": image or f"registry.railway.app/{service_id}:{commit[:12]}",
        },
        "buildLogs": [],
        "deployLogs": [],
        "outcome": None,
    }


def find_deployment(id):
    for d in STATE["deployments"]:
        if d["id"] == id:
            return d
    raise GraphQLError("Deployment not found")


def go_live(d):
    """`d` reached SUCCESS: the one that served before is removed."""
    for other in STATE["deployments"]:
        if (
            other is not d
            and other["serviceId"] == d["serviceId"]
            and other["environmentId"] == d["environmentId"]
            and other["status"] in ("SUCCESS", "SLEEPING")
        ):
            other["status"] = "REMOVED"
    d["canRollback"] = True


def advance(d):
    if not d["steps"]:
        return
    d["status"] = d["steps"].pop(0)
    if d["status"] == "BUILDING":
        d["buildLogs"].append(log("Building with Railpack"))
    if d["status"] == "SUCCESS":
        d["deployLogs"].append(log("Uvicorn running on http://0.0.0.0:8080"))
        go_live(d)
    elif d["status"] == "FAILED" and d.get("failure") != "healthcheck":
        d["buildLogs"].append(log("ERROR: failed to solve: pip install -r requirements.txt exited 1"))
    elif d["status"] == "DEPLOYING" and d.get("failure") == "healthcheck":
        d["buildLogs"].append(log("Starting Healthcheck"))
    elif d["status"] == "FAILED" and d.get("failure") == "healthcheck":
        # Railway's verdict is in the build log; the app keeps writing its own log after.
        d["buildLogs"].append(log("Healthcheck failed!"))
        for i in range(30):
            d["deployLogs"].append(log(f"GET / 503 waiting for the database ({i})"))
    elif d["status"] == "CRASHED":
        d["deployLogs"].append(log("RuntimeError: AUTH_JWT_SECRET_KEY is not set"))


def log(message):
    return {"message": message, "timestamp": now(), "severity": "info"}


def public(d):
    return {
        "id": d["id"],
        "status": d["status"],
        "createdAt": d["createdAt"],
        "canRollback": d["canRollback"],
        "meta": d["meta"],
        "serviceId": d["serviceId"],
        "environmentId": d["environmentId"],
        "projectId": d["projectId"],
    }


def instance_key(environment_id, service_id):
    if environment_id not in STATE["environments"]:
        raise GraphQLError("Environment not found")
    if service_id not in STATE["services"]:
        raise GraphQLError("Service not found")
    key = f"{environment_id}/{service_id}"
    if key not in STATE["instances"]:
        # A service whose instance in this environment is only staged (not committed).
        raise GraphQLError(f"not found: service {STATE['services'][service_id]}")
    return key


def apply_changes(env_id, changes):
    """A committed patch lands: the service instances and their variables exist."""
    for svc_id, variables in changes.items():
        STATE["instances"].add(f"{env_id}/{svc_id}")
        STATE["variables"][f"{env_id}/{svc_id}"] = variables


def settle_applying(env_id):
    """Railway applies a committed patch in the background: it lands after two reads."""
    pending = STATE["applying"].get(env_id)
    if not pending:
        return
    pending["reads_left"] -= 1
    if pending["reads_left"] <= 0:
        del STATE["applying"][env_id]
        apply_changes(env_id, pending["changes"])


def wrote(mutation, environment_id, service_id):
    """The request log of writes, by the names a test asserts on."""
    STATE["writes"].append(
        {
            "mutation": mutation,
            "environment": STATE["environments"].get(environment_id, environment_id),
            "service": STATE["services"].get(service_id, service_id),
        }
    )


def edges(nodes):
    return {"edges": [{"cursor": str(i), "node": n} for i, n in enumerate(nodes)], "pageInfo": {"hasNextPage": False, "hasPreviousPage": False}}


class Query:
    def project(self, info, id):
        if id != STATE["project"]["id"]:
            raise GraphQLError("Project not found")
        return {
            "id": id,
            "name": STATE["project"]["name"],
            "environments": edges(
                [{"id": i, "name": n, "deletedAt": None} for i, n in STATE["environments"].items()]
            ),
            "services": edges(
                [{"id": i, "name": n, "deletedAt": None} for i, n in STATE["services"].items()]
            ),
        }

    def projects(self, info, **args):
        return edges([{"id": STATE["project"]["id"], "name": STATE["project"]["name"]}])

    def projectToken(self, info):
        env_id = next(iter(STATE["environments"]))
        return {"projectId": STATE["project"]["id"], "environmentId": env_id}

    def deployments(self, info, input, first=None, **args):
        found = [
            public(d)
            for d in reversed(STATE["deployments"])
            if d["serviceId"] == input.get("serviceId")
            and d["environmentId"] == input.get("environmentId")
        ]
        return edges(found[: first or len(found)])

    def deployment(self, info, id):
        # Each read answers the status as it is, then moves the deployment one step on.
        d = find_deployment(id)
        answer = public(d)
        advance(d)
        return answer

    def serviceInstance(self, info, serviceId, environmentId):
        settle_applying(environmentId)
        instance_key(environmentId, serviceId)
        svc = STATE["services"][serviceId]
        env = STATE["environments"][environmentId]
        return {
            "id": f"{environmentId}/{serviceId}",
            "serviceName": svc,
            "domains": {
                "customDomains": [],
                "serviceDomains": [{"domain": f"{svc.lower()}-{env}.up.railway.app"}],
            },
        }

    def variables(self, info, projectId, environmentId, serviceId=None, **args):
        return dict(STATE["variables"].get(instance_key(environmentId, serviceId), {}))

    def deploymentLogs(self, info, deploymentId, limit=None, startDate=None, **args):
        return select_logs(find_deployment(deploymentId)["deployLogs"], limit, startDate)

    def buildLogs(self, info, deploymentId, limit=None, startDate=None, **args):
        return select_logs(find_deployment(deploymentId)["buildLogs"], limit, startDate)


def select_logs(lines, limit, start):
    out = [l for l in lines if start is None or l["timestamp"] >= start]
    return out[-limit:] if limit else out


class Mutation:
    def serviceInstanceDeployV2(self, info, serviceId, environmentId, commitSha=None):
        instance_key(environmentId, serviceId)
        wrote("serviceInstanceDeployV2", environmentId, serviceId)
        mode = STATE["behaviour"].get(STATE["services"][serviceId], "ok")
        steps = PROGRESSION[1:]
        commit = commitSha
        image = None
        if mode == "stale":
            # Railway serves the cached old image: SUCCESS, but the old commit runs.
            live = [
                d
                for d in STATE["deployments"]
                if d["serviceId"] == serviceId
                and d["environmentId"] == environmentId
                and d["status"] == "SUCCESS"
            ]
            commit = live[-1]["meta"]["commitHash"] if live else OLD_COMMIT
            image = live[-1]["meta"]["image"] if live else None
        elif mode == "fail_build":
            steps = ["INITIALIZING", "BUILDING", "FAILED"]
        elif mode == "crash":
            steps = ["INITIALIZING", "BUILDING", "DEPLOYING", "CRASHED"]
        elif mode == "healthcheck":
            steps = ["INITIALIZING", "BUILDING", "DEPLOYING", "FAILED"]
        elif mode == "slow":
            steps = ["QUEUED"] * 50 + PROGRESSION[1:]
        d = deployment_record(serviceId, environmentId, commit, "QUEUED", steps, image)
        if mode == "healthcheck":
            d["failure"] = "healthcheck"
        STATE["deployments"].append(d)
        return d["id"]

    def deploymentRollback(self, info, id):
        target = find_deployment(id)
        wrote("deploymentRollback", target["environmentId"], target["serviceId"])
        if not target["canRollback"]:
            raise GraphQLError("Deployment cannot be rolled back")
        if STATE["behaviour"].get(STATE["services"][target["serviceId"]]) == "rollback_in_place":
            # The other way Railway may roll back: the earlier deployment itself comes back.
            target["status"] = "QUEUED"
            target["steps"] = ["DEPLOYING", "SUCCESS"]
            return True
        d = deployment_record(
            target["serviceId"],
            target["environmentId"],
            target["meta"]["commitHash"],
            "QUEUED",
            ["DEPLOYING", "SUCCESS"],
            target["meta"]["image"],
        )
        STATE["deployments"].append(d)
        return True

    def deploymentCancel(self, info, id):
        d = find_deployment(id)
        wrote("deploymentCancel", d["environmentId"], d["serviceId"])
        if d["status"] in ("SUCCESS", "FAILED", "CRASHED", "REMOVED"):
            raise GraphQLError("Deployment cannot be cancelled")
        d["status"] = "REMOVED"
        d["steps"] = []
        d["canRollback"] = False
        return True

    def variableCollectionUpsert(self, info, input):
        key = instance_key(input["environmentId"], input.get("serviceId"))
        wrote("variableCollectionUpsert", input["environmentId"], input.get("serviceId"))
        STATE["upserts"].append(
            {
                "names": sorted(input["variables"].keys()),
                "replace": input.get("replace"),
                "skipDeploys": input.get("skipDeploys"),
            }
        )
        current = STATE["variables"].setdefault(key, {})
        if input.get("replace"):
            current.clear()
        current.update(input["variables"])
        if not input.get("skipDeploys"):
            # What Railway does on a variable change: a deployment of its own.
            d = deployment_record(
                input["serviceId"], input["environmentId"], OLD_COMMIT, "QUEUED", PROGRESSION[1:]
            )
            STATE["deployments"].append(d)
        return True

    def variableDelete(self, info, input):
        key = instance_key(input["environmentId"], input.get("serviceId"))
        wrote("variableDelete", input["environmentId"], input.get("serviceId"))
        STATE["variables"].get(key, {}).pop(input["name"], None)
        return True

    def environmentCreate(self, info, input):
        if input["projectId"] != STATE["project"]["id"]:
            raise GraphQLError("Project not found")
        if input["name"] in STATE["environments"].values():
            raise GraphQLError("Environment already exists")
        source = input.get("sourceEnvironmentId")
        if source is not None and source not in STATE["environments"]:
            raise GraphQLError("Environment not found")
        env_id = new_id()
        STATE["environments"][env_id] = input["name"]
        STATE["created_environments"].append(
            {
                "name": input["name"],
                "source": STATE["environments"].get(source),
                "stageInitialChanges": input.get("stageInitialChanges"),
                "skipInitialDeploys": input.get("skipInitialDeploys"),
            }
        )
        changes = {}
        for svc_id, svc_name in STATE["services"].items():
            copied = dict(STATE["variables"].get(f"{source}/{svc_id}", {})) if source else {}
            if svc_name == "Postgres":
                # A database service gets a database of its own in the new environment.
                copied = postgres_variables(input["name"])
            changes[svc_id] = copied
        if input.get("stageInitialChanges"):
            # Railway's schema: the copy is staged, applied only by environmentPatchCommitStaged.
            STATE["staged"][env_id] = {"changes": changes,
                                       "deploy": not input.get("skipInitialDeploys")}
            return {"id": env_id, "name": input["name"]}
        apply_changes(env_id, changes)
        if not input.get("skipInitialDeploys"):
            initial_deploys(env_id)
        return {"id": env_id, "name": input["name"]}

    def environmentPatchCommitStaged(self, info, environmentId, commitMessage=None, skipDeploys=None):
        if environmentId not in STATE["environments"]:
            raise GraphQLError("Environment not found")
        staged = STATE["staged"].pop(environmentId, None)
        STATE["commits"].append({"environment": STATE["environments"][environmentId],
                                 "skipDeploys": skipDeploys, "message": commitMessage})
        if staged:
            STATE["applying"][environmentId] = {"reads_left": 2, "changes": staged["changes"]}
            if not skipDeploys:
                apply_changes(environmentId, staged["changes"])
                del STATE["applying"][environmentId]
                initial_deploys(environmentId)
        return new_id()


def initial_deploys(env_id):
    for svc_id in STATE["services"]:
        d = deployment_record(svc_id, env_id, OLD_COMMIT, "QUEUED", PROGRESSION[1:])
        STATE["deployments"].append(d)


class Root:
    """Both roots in one: graphql-core reads the field's resolver off the root value."""

    def __init__(self):
        for cls in (Query, Mutation):
            for name in dir(cls):
                if not name.startswith("_"):
                    setattr(self, name, getattr(cls(), name))


ROOT = Root()


def error_answer(code, messages):
    return {"errors": [{"message": m, "extensions": {"code": code}} for m in messages]}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body, default=sorted).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        text = self.rfile.read(length) if length else b"{}"
        return json.loads(text or b"{}")

    def do_GET(self):
        if self.path == "/control/state":
            with LOCK:
                return self.send(200, STATE)
        self.send(404, {"message": "no such path"})

    def do_POST(self):
        body = self.read_json()
        self.held = 0
        with LOCK:
            if self.path == "/control/reset":
                reset(
                    body.get("environments", ["production", "staging"]),
                    body.get("services", ["web", "Postgres"]),
                    body.get("project_id"),
                )
                return self.send(200, {"project_id": STATE["project"]["id"]})
            if self.path == "/control/variables":
                # A service instance's variables as a dashboard user left them (no write logged).
                env_id = next(i for i, n in STATE["environments"].items() if n == body["environment"])
                svc_id = next(i for i, n in STATE["services"].items() if n == body["service"])
                STATE["variables"][f"{env_id}/{svc_id}"] = dict(body["variables"])
                return self.send(200, {})
            if self.path == "/control/behaviour":
                STATE["behaviour"][body["service"]] = body["mode"]
                return self.send(200, {})
            if self.path == "/control/fault":
                STATE["faults"].extend([body] * int(body.get("count", 1)))
                return self.send(200, {})
            if self.path == "/control/validate":
                # Validation only (no execution): each document the crate holds, checked alone.
                try:
                    errors = [e.message for e in validate(SCHEMA, parse(body["query"]))]
                except GraphQLError as e:
                    errors = [e.message]
                return self.send(200, {"errors": errors})
            if self.path == "/graphql/v2":
                reply = self.graphql(body)
            else:
                reply = (404, {"message": "no such path"}, ())
        if self.held:
            # A held answer: the request was executed (under the lock, so what it did is in
            # the state at once); its answer leaves only later, with the lock free, so other
            # requests and /control/state are served meanwhile.
            time.sleep(self.held)
        try:
            self.send(*reply)
        except (BrokenPipeError, ConnectionResetError):
            # The client went away while its answer was held (a signal stopped it).
            pass

    def graphql(self, body):
        auth = self.headers.get("Authorization", "")
        project_token = self.headers.get("project-access-token")
        credential = (
            "bearer" if auth.startswith("Bearer ") else "project" if project_token else None
        )
        token = auth[len("Bearer ") :] if credential == "bearer" else project_token
        operation = body.get("operationName")
        STATE["requests"].append({"operation": operation, "credential": credential})
        at = next(
            (i for i, f in enumerate(STATE["faults"]) if f.get("operation") in (None, operation)),
            None,
        )
        if at is not None:
            fault = STATE["faults"].pop(at)
            if fault["kind"] == "slow":
                time.sleep(float(fault.get("retry_after", 1)))
            if fault["kind"] == "hold":
                self.held = float(fault.get("retry_after", 1))
            if fault["kind"] == "rate_limit":
                return (
                    429,
                    error_answer("RATE_LIMITED", ["Too many requests"]),
                    [("Retry-After", str(fault.get("retry_after", 1)))],
                )
            if fault["kind"] == "server_error":
                return (503, b"<html>503 Service Unavailable</html>", ())
            if fault["kind"] == "malformed":
                return (200, b'{"data": {"deployment": ', ())
        query = body.get("query")
        if not isinstance(query, str):
            STATE["rejected"].append({"operation": operation, "errors": ["no query"]})
            return (400, error_answer("GRAPHQL_PARSE_FAILED", ["no query"]), ())
        try:
            document = parse(query)
        except GraphQLError as e:
            STATE["rejected"].append({"operation": operation, "errors": [e.message]})
            return (400, error_answer("GRAPHQL_PARSE_FAILED", [e.message]), ())
        errors = validate(SCHEMA, document)
        if errors:
            messages = [e.message for e in errors]
            STATE["rejected"].append({"operation": operation, "errors": messages})
            return (400, error_answer("GRAPHQL_VALIDATION_FAILED", messages), ())
        ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        op = next((d for d in ops if d.name and d.name.value == operation), ops[0] if len(ops) == 1 else None)
        if op is None:
            STATE["rejected"].append({"operation": operation, "errors": ["unknown operation"]})
            return (400, error_answer("GRAPHQL_VALIDATION_FAILED", ["unknown operation"]), ())
        coerced = get_variable_values(SCHEMA, op.variable_definitions or [], body.get("variables") or {})
        if isinstance(coerced, list):
            messages = [e.message for e in coerced]
            STATE["rejected"].append({"operation": operation, "errors": messages})
            return (400, error_answer("BAD_USER_INPUT", messages), ())
        if credential is None or token in ("", "bad-token"):
            return (200, {"data": None, "errors": [{"message": "Not Authorized"}]}, ())
        if op.operation.value == "mutation":
            STATE["mutations"].extend(
                s.name.value for s in op.selection_set.selections if hasattr(s, "name")
            )
        result = execute(
            SCHEMA,
            document,
            root_value=ROOT,
            variable_values=body.get("variables") or {},
            operation_name=operation,
        )
        answer = {"data": result.data}
        if result.errors:
            answer["errors"] = [{"message": e.message} for e in result.errors]
        return (200, answer, ())


def main():
    reset()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
