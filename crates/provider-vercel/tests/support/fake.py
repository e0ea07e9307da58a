"""A small stateful fake of the Vercel REST API, for what Prism's mock cannot play:
deployments that move QUEUED -> BUILDING -> READY (or ERROR / CANCELED), the production
target and its aliases, promote (which resets autoAssignCustomDomains, as vercel/vercel
#15095 reports), env vars per target, and injected 429 / 5xx / malformed answers.

Prism (`prism proxy --errors vercel-openapi.json`) sits in front of it, so every request
the provider sends and every answer given here is checked against Vercel's published
contract. One call is NOT in that contract: `POST /v1/projects/{id}/rollback/{dep}`.
It is answered here directly (a hand-written double; the provider is pointed at this
server, not Prism, for it).

Control endpoints (`/_fake/...`) are for the tests only.
Usage: python3 fake.py PORT TOKEN
"""

import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
TOKEN = sys.argv[2]
LOCK = threading.Lock()


def fresh_state():
    return {
        "projects": {},
        "deployments": {},
        "order": [],
        "envs": {},
        "faults": [],
        "plans": [],
        "alias_jobs": [],
        "requests": [],
        "clock": 1_700_000_000_000,
        "next": 1,
    }


STATE = fresh_state()


def next_id(prefix):
    n = STATE["next"]
    STATE["next"] += 1
    return f"{prefix}_{n:06d}"


def add_project(name, auto_assign=True, custom_envs=()):
    pid = "prj_" + name.replace("-", "")[:20]
    STATE["projects"][pid] = {
        "id": pid,
        "name": name,
        "autoAssignCustomDomains": auto_assign,
        "production": None,
        "domain": f"{name}.example.com",
        "custom_envs": {slug: f"env_{slug}" for slug in custom_envs},
    }
    STATE["envs"][pid] = []
    return pid


def deployment_json(d):
    p = STATE["projects"][d["projectId"]]
    out = {
        "build": {"env": []},
        "env": [],
        "inspectorUrl": None,
        "isInConcurrentBuildsQueue": False,
        "isInSystemBuildsQueue": False,
        "projectSettings": {},
        "aliasAssigned": d["aliasAssigned"],
        "bootedAt": d["createdAt"],
        "buildingAt": d["createdAt"],
        "buildSkipped": False,
        "creator": {"uid": "usr_fake"},
        "public": False,
        "status": d["state"],
        "id": d["id"],
        "createdAt": d["createdAt"],
        "readyState": d["state"],
        "name": p["name"],
        "type": "LAMBDAS",
        "meta": d["meta"],
        "regions": ["iad1"],
        "url": d["url"],
        "version": 2,
        "projectId": d["projectId"],
        "plan": "pro",
        "createdIn": "iad1",
        "ownerId": "team_fake",
        "routes": None,
        "target": d["target"] if d["target"] in ("production", "staging") else None,
        "alias": aliases_of(d),
    }
    return out


def aliases_of(d):
    p = STATE["projects"][d["projectId"]]
    if p["production"] == d["id"]:
        return [p["domain"]]
    return []


def list_item(d):
    p = STATE["projects"][d["projectId"]]
    item = {
        "uid": d["id"],
        "name": p["name"],
        "projectId": d["projectId"],
        "url": d["url"],
        "created": d["createdAt"],
        "createdAt": d["createdAt"],
        "type": "LAMBDAS",
        "creator": {"uid": "usr_fake"},
        "inspectorUrl": None,
        "state": d["state"],
        "readyState": d["state"],
        "meta": d["meta"],
    }
    if d["target"] in ("production", "staging"):
        item["target"] = d["target"]
    return item


def start_alias_job(p, d, kind):
    """Promote and instant rollback finish in the background, as on Vercel: the request is
    answered 201 at once, `lastAliasRequest.jobStatus` stays `pending` until the job ends
    (`/_fake/alias-job` sets how long and how; by default at once, succeeded)."""
    job = STATE["alias_jobs"].pop(0) if STATE["alias_jobs"] else {"delay": 0, "outcome": "succeeded"}
    p["lastAliasRequest"] = {
        "fromDeploymentId": p["production"] or "",
        "toDeploymentId": d["id"],
        "jobStatus": "pending",
        "requestedAt": int(time.time() * 1000),
        "type": kind,
    }
    p["job"] = {"done_at": time.time() + job.get("delay", 0), "outcome": job["outcome"],
                "failed": job.get("failedAliases", [])}
    settle_alias_job(p)


def settle_alias_job(p):
    job = p.get("job")
    if not job or time.time() < job["done_at"]:
        return
    p["job"] = None
    req = p["lastAliasRequest"]
    req["jobStatus"] = job["outcome"]
    p["failed_aliases"] = job["failed"]
    if job["outcome"] == "succeeded":
        p["production"] = req["toDeploymentId"]
        STATE["deployments"][req["toDeploymentId"]]["aliasAssigned"] = True


def project_json(p):
    settle_alias_job(p)
    out = {
        "accountId": "team_fake",
        "directoryListing": False,
        "id": p["id"],
        "name": p["name"],
        "nodeVersion": "22.x",
        "resourceConfig": {"functionDefaultRegions": ["iad1"]},
        "defaultResourceConfig": {"functionDefaultRegions": ["iad1"]},
        "autoAssignCustomDomains": p["autoAssignCustomDomains"],
    }
    if p["production"]:
        # Every field the description requires of a target (`targets.production`).
        d = STATE["deployments"].get(p["production"])
        target = {"id": p["production"]}
        if d is not None:
            target.update({
                "createdAt": d["createdAt"],
                "createdIn": "iad1",
                "creator": {"uid": "usr_fake", "email": "ci@example.com", "username": "ci"},
                "deploymentHostname": d["url"],
                "name": p["name"],
                "plan": "pro",
                "private": True,
                "readyState": d["state"],
                "type": "LAMBDAS",
                "url": d["url"],
                "userId": "usr_fake",
            })
        out["targets"] = {"production": target}
    if p.get("lastAliasRequest"):
        out["lastAliasRequest"] = dict(p["lastAliasRequest"])
    return out


def env_json(e, with_value=True):
    out = {
        "id": e["id"],
        "key": e["key"],
        "type": e["type"],
        "target": list(e["target"]),
        "gitBranch": e.get("gitBranch"),
        "customEnvironmentIds": list(e.get("customEnvironmentIds", [])),
        "value": e["value"] if with_value and e["type"] != "sensitive" else "",
    }
    if out["gitBranch"] is None:
        del out["gitBranch"]
    return out


def advance(d):
    """One step of a deployment's life, taken each time it is read."""
    if d["steps"]:
        d["state"] = d["steps"].pop(0)
        if d["state"] == "READY":
            d["events"].append(("stdout", "Build Completed"))
            p = STATE["projects"][d["projectId"]]
            if d["target"] == "production" and p["autoAssignCustomDomains"]:
                p["production"] = d["id"]
                d["aliasAssigned"] = True
        elif d["state"] == "ERROR":
            d["events"].append(("stderr", "Error: Command \"next build\" exited with 1"))
            d["events"].append(("stderr", "Type error: Property 'x' does not exist"))
        elif d["state"] == "BUILDING":
            d["events"].append(("stdout", "Running \"next build\""))


def find_project(key):
    if key in STATE["projects"]:
        return STATE["projects"][key]
    for p in STATE["projects"].values():
        if p["name"] == key:
            return p
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body=None, headers=None, raw=None):
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        if raw is None and body is not None:
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, code, message):
        self.send(status, {"error": {"code": code, "message": message}})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if not n:
            return None
        return json.loads(self.rfile.read(n))

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PATCH(self):
        self.route("PATCH")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
        body = self.body()
        with LOCK:
            if parts[0] == "_fake":
                return self.control(parts[1:], body)
            STATE["requests"].append({"method": method, "path": url.path, "query": q, "body": body})
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self.error(403, "forbidden", "Not authorized")
            if STATE["faults"]:
                kind, retry_after = STATE["faults"].pop(0)
                if kind == "malformed":
                    return self.send(200, raw=b"<html>upstream hiccup</html>",
                                     headers={"Content-Type": "application/json"})
                headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                return self.send(int(kind), {"error": {"code": "fault", "message": "injected"}}, headers)
            try:
                return self.api(method, parts, q, body)
            except KeyError as e:
                return self.error(404, "not_found", f"unknown {e}")

    def control(self, parts, body):
        global STATE
        if parts == ["reset"]:
            STATE = fresh_state()
            ids = {}
            for p in body.get("projects", []):
                ids[p["name"]] = add_project(p["name"], p.get("autoAssignCustomDomains", True),
                                             p.get("customEnvironments", []))
            return self.send(200, ids)
        if parts == ["plan"]:
            STATE["plans"].extend(body["plans"])
            return self.send(200, {})
        if parts == ["alias-job"]:
            STATE["alias_jobs"].append(body)
            return self.send(200, {})
        if parts == ["fault"]:
            for _ in range(body.get("count", 1)):
                STATE["faults"].append((body["kind"], body.get("retryAfter")))
            return self.send(200, {})
        if parts == ["state"]:
            out = {
                "projects": STATE["projects"],
                "deployments": {k: {x: v for x, v in d.items() if x != "steps"}
                                for k, d in STATE["deployments"].items()},
                "envs": STATE["envs"],
                "requests": STATE["requests"],
            }
            return self.send(200, out)
        if parts == ["set-auto-assign"]:
            find_project(body["project"])["autoAssignCustomDomains"] = body["value"]
            return self.send(200, {})
        return self.send(404, {})

    def api(self, method, parts, q, body):
        path = "/".join(parts)
        # Projects
        if method in ("GET", "PATCH") and len(parts) == 3 and parts[:2] == ["v9", "projects"]:
            p = find_project(parts[2])
            if not p:
                return self.error(404, "not_found", "Project not found")
            if method == "PATCH":
                if "autoAssignCustomDomains" in body:
                    p["autoAssignCustomDomains"] = body["autoAssignCustomDomains"]
            return self.send(200, project_json(p))
        if method == "GET" and len(parts) == 5 and parts[3] == "custom-environments":
            p = find_project(parts[2])
            slug = parts[4]
            if not p or slug not in p["custom_envs"]:
                return self.error(404, "not_found", "Custom environment not found")
            return self.send(200, {"id": p["custom_envs"][slug], "slug": slug, "type": "preview",
                                   "createdAt": 1, "updatedAt": 1})
        # Deployments
        if method == "POST" and path == "v13/deployments":
            return self.create_deployment(body)
        if method == "GET" and len(parts) == 3 and parts[:2] == ["v13", "deployments"]:
            d = STATE["deployments"].get(parts[2])
            if not d:
                return self.error(404, "not_found", "Deployment not found")
            advance(d)
            return self.send(200, deployment_json(d))
        if method == "GET" and path == "v6/deployments":
            items = [STATE["deployments"][i] for i in reversed(STATE["order"])]
            items = [d for d in items if d["projectId"] == q.get("projectId")]
            if "target" in q:
                items = [d for d in items if d["target"] == q["target"]]
            if "branch" in q:
                items = [d for d in items if d["meta"].get("githubCommitRef") == q["branch"]]
            limit = int(q.get("limit", 20))
            items = items[:limit]
            return self.send(200, {"pagination": {"count": len(items), "next": None, "prev": None},
                                   "deployments": [list_item(d) for d in items]})
        if method == "PATCH" and len(parts) == 4 and parts[3] == "cancel":
            d = STATE["deployments"][parts[2]]
            if d["state"] in ("QUEUED", "BUILDING", "INITIALIZING"):
                d["state"] = "CANCELED"
                d["steps"] = []
            return self.send(200, deployment_json(d))
        if method == "GET" and len(parts) == 4 and parts[3] == "events":
            d = STATE["deployments"][parts[2]]
            events = [{"type": t, "created": d["createdAt"] + i,
                       "payload": {"deploymentId": d["id"], "id": f"evt_{i}",
                                   "date": d["createdAt"] + i, "serial": str(i), "text": text}}
                      for i, (t, text) in enumerate(d["events"])]
            limit = int(q.get("limit", 100))
            if limit >= 0:
                events = events[-limit:] if limit else []
            return self.send(200, events)
        if method == "GET" and len(parts) == 4 and parts[:2] == ["v2", "deployments"] and parts[3] == "aliases":
            d = STATE["deployments"][parts[2]]
            return self.send(200, {"aliases": [
                {"uid": "ali_" + a.replace(".", ""), "alias": a, "created": "2026-01-01T00:00:00.000Z"}
                for a in aliases_of(d)]})
        if method == "POST" and len(parts) == 5 and parts[3] == "promote":
            p = find_project(parts[2])
            d = STATE["deployments"].get(parts[4])
            if not p or not d or d["projectId"] != p["id"]:
                return self.error(404, "not_found", "Deployment not found")
            if d["state"] != "READY":
                return self.error(409, "not_ready", "Deployment is not ready")
            start_alias_job(p, d, "promote")
            # vercel/vercel #15095: promote turns automatic domain assignment back on.
            p["autoAssignCustomDomains"] = True
            return self.send(201)
        if method == "POST" and len(parts) == 5 and parts[0] == "v1" and parts[3] == "rollback":
            # The hand-written double: not in the published contract.
            p = find_project(parts[2])
            d = STATE["deployments"].get(parts[4])
            if not p or not d or d["projectId"] != p["id"] or d["state"] != "READY" \
                    or d["target"] != "production":
                return self.error(404, "not_found", "Deployment not found")
            start_alias_job(p, d, "rollback")
            return self.send(201)
        if method == "GET" and len(parts) == 5 and parts[0] == "v1" and parts[3:] == ["promote", "aliases"]:
            p = find_project(parts[2])
            if not p:
                return self.error(404, "not_found", "Project not found")
            settle_alias_job(p)
            failed = p.get("failed_aliases", []) if q.get("failedOnly") == "true" else []
            return self.send(200, {"aliases": [
                {"id": "ali_" + a["alias"].replace(".", ""), "alias": a["alias"], "status": a["status"]}
                for a in failed]})
            # No `pagination`: the published answer is `oneOf [{type: object}, {aliases,
            # pagination}]`, which a body with both fields matches twice (a oneOf violation
            # Prism reports); without it only the first branch matches.
        # Env vars
        if len(parts) == 4 and parts[3] == "env" and parts[:2] == ["v10", "projects"]:
            p = find_project(parts[2])
            if method == "GET":
                envs = STATE["envs"][p["id"]]
                decrypt = q.get("decrypt") == "true"
                return self.send(200, {"envs": [env_json(e, decrypt) for e in envs],
                                       "pagination": {"count": len(envs), "next": None, "prev": None}})
            if method == "POST":
                return self.create_env(p, body, q.get("upsert") == "true")
        if len(parts) == 5 and parts[3] == "env":
            p = find_project(parts[2])
            envs = STATE["envs"][p["id"]]
            e = next((e for e in envs if e["id"] == parts[4]), None)
            if not e:
                return self.error(404, "not_found", "Env var not found")
            if method == "GET" and parts[0] == "v1":
                out = env_json(e)
                out["decrypted"] = e["type"] != "sensitive"
                return self.send(200, out)
            if method == "PATCH" and parts[0] == "v9":
                for k in ("value", "type", "target", "gitBranch", "customEnvironmentIds", "key"):
                    if k in body:
                        e[k] = body[k]
                return self.send(200, env_json(e))
            if method == "DELETE" and parts[0] == "v9":
                envs.remove(e)
                return self.send(200, env_json(e))
        return self.error(404, "not_found", f"no route {method} /{path}")

    def create_deployment(self, body):
        p = find_project(body.get("project") or body["name"])
        if not p:
            return self.error(404, "not_found", "Project not found")
        git = body.get("gitSource") or {}
        sha = git.get("sha")
        plan = STATE["plans"].pop(0) if STATE["plans"] else "ok"
        built_sha = sha
        if plan == "other-commit":
            built_sha = "0000000deadbeef0000000000000000000000000"
        steps = {"ok": ["QUEUED", "BUILDING", "READY"],
                 "error": ["BUILDING", "ERROR"],
                 "slow": ["QUEUED"] + ["BUILDING"] * 50 + ["READY"],
                 "other-commit": ["BUILDING", "READY"]}[plan]
        did = next_id("dpl")
        target = body.get("target")
        if body.get("customEnvironmentSlugOrId"):
            target = body["customEnvironmentSlugOrId"]
        STATE["clock"] += 1000
        d = {
            "id": did,
            "projectId": p["id"],
            "target": target or "preview",
            "state": "QUEUED",
            "steps": steps[1:],
            "meta": dict(body.get("meta") or {}, **{
                "githubCommitSha": built_sha or "", "githubCommitRef": git.get("ref", ""),
                "githubCommitOrg": git.get("org", ""), "githubCommitRepo": git.get("repo", "")}),
            "url": f"{p['name']}-{did[-6:]}.vercel.app",
            "createdAt": STATE["clock"],
            "aliasAssigned": False,
            "events": [("stdout", f"Cloning github.com/{git.get('org')}/{git.get('repo')} (Commit: {(built_sha or '')[:7]})")],
        }
        STATE["deployments"][did] = d
        STATE["order"].append(did)
        return self.send(200, deployment_json(d))

    def create_env(self, p, body, upsert):
        items = body if isinstance(body, list) else [body]
        created = []
        for b in items:
            e = {"id": next_id("env"), "key": b["key"], "value": b["value"], "type": b["type"],
                 "target": b.get("target", []), "gitBranch": b.get("gitBranch"),
                 "customEnvironmentIds": b.get("customEnvironmentIds", [])}
            STATE["envs"][p["id"]].append(e)
            created.append(env_json(e))
        return self.send(201, {"created": created[0] if len(created) == 1 else created, "failed": []})


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    print(f"fake listening on {PORT}", flush=True)
    server.serve_forever()
