// Validates deploy/: every Kubernetes object against the Kubernetes schemas
// (kubernetes-models, offline), the shape this project promises (a native
// sidecar with probes and resources, every referenced ConfigMap/Secret key
// present), and that the sidecache config shipped in the ConfigMap and in
// the compose setup passes `sidecache check`.
//
//   node tests/tools/validate-deploy.mjs SOURCE_DIR SIDECACHE_BINARY
import { readFileSync, readdirSync, mkdtempSync, writeFileSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { execFileSync } from "node:child_process";
import { parseAllDocuments, parse } from "yaml";

const [root, binary] = process.argv.slice(2);
if (!root || !binary) {
  console.error("usage: validate-deploy.mjs SOURCE_DIR SIDECACHE_BINARY");
  process.exit(2);
}
let failures = 0;
const fail = (msg) => {
  console.error("FAIL: " + msg);
  failures++;
};
const ok = (msg) => console.log("ok: " + msg);

// --- Kubernetes ------------------------------------------------------------
const k8sDir = join(root, "deploy/kubernetes");
const objects = [];
for (const f of readdirSync(k8sDir).filter((f) => f.endsWith(".yaml")).sort()) {
  if (f === "kustomization.yaml") continue;
  for (const doc of parseAllDocuments(readFileSync(join(k8sDir, f), "utf8"))) {
    if (doc.errors.length) fail(`${f}: ${doc.errors[0].message}`);
    const obj = doc.toJS();
    if (obj) objects.push({ file: f, obj });
  }
}
for (const { file, obj } of objects) {
  let Model;
  try {
    // kubernetes-models/<apiVersion>/<Kind>, e.g. apps/v1/Deployment, v1/Secret
    Model = (await import(`kubernetes-models/${obj.apiVersion}/${obj.kind}`))[obj.kind];
  } catch (e) {
    fail(`${file}: no schema for ${obj.apiVersion} ${obj.kind}`);
    continue;
  }
  try {
    new Model(obj).validate();
    ok(`${file}: ${obj.kind} ${obj.metadata.name} is valid ${obj.apiVersion}`);
  } catch (e) {
    fail(`${file}: ${obj.kind} ${obj.metadata?.name}: ${e.message}`);
  }
}

const kustomization = parse(readFileSync(join(k8sDir, "kustomization.yaml"), "utf8"));
const listed = new Set(kustomization.resources);
for (const f of readdirSync(k8sDir).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml"))
  if (!listed.has(f)) fail(`kustomization.yaml does not list ${f}`);
for (const f of listed) if (!existsSync(join(k8sDir, f))) fail(`kustomization.yaml lists missing ${f}`);

const byKind = (kind) => objects.filter((o) => o.obj.kind === kind).map((o) => o.obj);
const configMaps = new Map(byKind("ConfigMap").map((c) => [c.metadata.name, c]));
const secrets = new Map(byKind("Secret").map((s) => [s.metadata.name, s]));
const deployments = byKind("Deployment");
if (deployments.length !== 1) fail(`expected one Deployment, found ${deployments.length}`);
for (const d of deployments) {
  const spec = d.spec.template.spec;
  const sidecar = (spec.initContainers || []).find((c) => c.name === "sidecache");
  if (!sidecar) {
    fail("the Deployment has no sidecache init container");
    continue;
  }
  if (sidecar.restartPolicy !== "Always") fail("sidecache must be a native sidecar (restartPolicy: Always)");
  for (const p of ["startupProbe", "readinessProbe", "livenessProbe"])
    if (!sidecar[p]?.httpGet) fail(`sidecache has no HTTP ${p}`);
  if (sidecar.readinessProbe?.httpGet?.path !== "/readyz") fail("the readiness probe must ask /readyz");
  if (sidecar.livenessProbe?.httpGet?.path !== "/healthz") fail("the liveness probe must ask /healthz");
  for (const r of ["requests", "limits"]) if (!sidecar.resources?.[r]?.memory) fail(`sidecache has no memory ${r}`);
  if (!sidecar.securityContext?.runAsNonRoot) fail("sidecache must run as non-root");
  if (!(spec.containers || []).some((c) => (c.env || []).some((e) => e.value === "http://127.0.0.1:7070")))
    fail("no application container is pointed at http://127.0.0.1:7070");
  // Every referenced ConfigMap, Secret and key exists in these manifests.
  for (const v of spec.volumes || [])
    if (v.configMap && !configMaps.has(v.configMap.name)) fail(`volume ${v.name}: no ConfigMap ${v.configMap.name}`);
  for (const c of [...(spec.initContainers || []), ...spec.containers])
    for (const e of c.env || []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (!ref) continue;
      const s = secrets.get(ref.name);
      if (!s || !(ref.key in (s.stringData || s.data || {}))) fail(`${c.name}: env ${e.name} refers to missing ${ref.name}/${ref.key}`);
    }
  if (d.spec.template.spec.terminationGracePeriodSeconds <= 10)
    fail("terminationGracePeriodSeconds must be longer than shutdown_timeout");
  ok("the Deployment runs sidecache as a native sidecar with probes, resources and its Secret");
}

// The config and entities in the ConfigMaps pass `sidecache check`.
function check(label, mainYaml, entities) {
  const dir = mkdtempSync(join(tmpdir(), "sidecache-deploy-"));
  try {
    writeFileSync(join(dir, "sidecache.yaml"), mainYaml);
    mkdirSync(join(dir, "entities"));
    for (const [name, text] of Object.entries(entities)) writeFileSync(join(dir, "entities", name), text);
    execFileSync(binary, ["check", "--config", join(dir, "sidecache.yaml")], { stdio: "pipe" });
    ok(`${label}: sidecache check passes`);
  } catch (e) {
    fail(`${label}: sidecache check failed: ${e.stdout}${e.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const main = configMaps.get("sidecache-config");
const ents = configMaps.get("sidecache-entities");
if (!main || !ents) fail("the ConfigMaps sidecache-config and sidecache-entities are missing");
else check("deploy/kubernetes ConfigMaps", main.data["sidecache.yaml"], ents.data);

// --- compose ---------------------------------------------------------------
const composeFile = join(root, "deploy/compose/compose.yaml");
const compose = parse(readFileSync(composeFile, "utf8"));
for (const s of ["redis", "postgres", "sidecache", "app"]) if (!compose.services?.[s]) fail(`compose: no service ${s}`);
const sc = compose.services?.sidecache;
if (sc && !sc.healthcheck) fail("compose: sidecache has no healthcheck");
if (sc && !(sc.depends_on && sc.depends_on.postgres)) fail("compose: sidecache does not wait for postgres");
// Every file the compose setup mounts exists.
for (const [name, svc] of Object.entries(compose.services || {}))
  for (const v of svc.volumes || []) {
    const src = typeof v === "string" ? v.split(":")[0] : v.source;
    if (src.startsWith(".") && !existsSync(join(root, "deploy/compose", src))) fail(`compose: ${name} mounts missing ${src}`);
  }
const composeConfig = join(root, "deploy/compose/sidecache.yaml");
if (existsSync(composeConfig)) {
  const entDir = join(root, "config/examples/entities");
  const entities = Object.fromEntries(readdirSync(entDir).map((f) => [f, readFileSync(join(entDir, f), "utf8")]));
  check("deploy/compose/sidecache.yaml", readFileSync(composeConfig, "utf8"), entities);
} else fail("deploy/compose/sidecache.yaml is missing");
// The Redis Cluster variant: its config passes too, and its override file
// mounts what exists and waits for the cluster to be made.
{
  const clusterConfig = join(root, "deploy/compose/sidecache.redis-cluster.yaml");
  const entDir = join(root, "config/examples/entities");
  const entities = Object.fromEntries(readdirSync(entDir).map((f) => [f, readFileSync(join(entDir, f), "utf8")]));
  if (existsSync(clusterConfig)) check("deploy/compose/sidecache.redis-cluster.yaml", readFileSync(clusterConfig, "utf8"), entities);
  else fail("deploy/compose/sidecache.redis-cluster.yaml is missing");
  const over = parse(readFileSync(join(root, "deploy/compose/compose.redis-cluster.yaml"), "utf8"));
  for (const s of ["redis", "redis-2", "redis-3", "redis-cluster-init", "sidecache"])
    if (!over.services?.[s]) fail(`compose.redis-cluster.yaml: no service ${s}`);
  if (!over.services?.sidecache?.depends_on?.["redis-cluster-init"]) fail("compose.redis-cluster.yaml: sidecache does not wait for the cluster");
  for (const v of over.services?.sidecache?.volumes || []) {
    const src = typeof v === "string" ? v.split(":")[0] : v.source;
    if (src.startsWith(".") && !existsSync(join(root, "deploy/compose", src))) fail(`compose.redis-cluster.yaml: mounts missing ${src}`);
  }
}
if (failures === 0) ok("compose: services, healthcheck and mounts");

console.log(failures ? `${failures} problem(s)` : "deploy/ is valid");
process.exit(failures ? 1 : 0);
