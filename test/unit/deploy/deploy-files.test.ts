/**
 * The files in deploy/ that operators apply, checked offline:
 * - every Kubernetes manifest against the Kubernetes OpenAPI schemas (kubernetes-models' validators:
 *   types, required fields, formats), plus what our setup needs (probes on /ready and /health, a
 *   preStop, limits, non-root, the headless Service the balancer's --backends-dns names);
 * - the compose file's services and dependencies; the systemd units with `systemd-analyze verify`;
 * - the Prometheus rules with `promtool check rules` and `promtool test rules`;
 * - every metric the dashboard and the rules use is one the instances or the balancer document.
 * A deliberately broken manifest must fail the same validation, so the check can fail.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, parse } from "yaml";
import { skipUnlessInstalled } from "../../support/tools.js";

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const DEPLOY = join(ROOT, "deploy");

type Manifest = { apiVersion: string; kind: string; metadata: { name: string }; [key: string]: unknown };
type Validated = { validate(): void };

/** kubernetes-models' class for apiVersion/kind: `kubernetes-models/<group>/<version>/<Kind>`. */
async function modelFor(manifest: Manifest): Promise<new (data: unknown) => Validated> {
  const [group, version] = manifest.apiVersion.includes("/")
    ? manifest.apiVersion.split("/")
    : ["", manifest.apiVersion];
  const path = `kubernetes-models/${group === "" ? "v1" : `${group}/${version}`}/${manifest.kind}`;
  const module = (await import(path)) as Record<string, new (data: unknown) => Validated>;
  const model = module[manifest.kind];
  if (!model) throw new Error(`no model for ${manifest.apiVersion} ${manifest.kind}`);
  return model;
}

async function validateManifest(manifest: Manifest): Promise<void> {
  const Model = await modelFor(manifest);
  new Model(manifest).validate();
}

function loadManifests(): { file: string; manifest: Manifest }[] {
  const dir = join(DEPLOY, "kubernetes");
  const found: { file: string; manifest: Manifest }[] = [];
  for (const file of readdirSync(dir)
    .filter((name) => name.endsWith(".yaml"))
    .sort()) {
    if (file === "kustomization.yaml") continue;
    for (const document of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      assert.deepEqual(document.errors, [], `${file}: YAML errors`);
      found.push({ file, manifest: document.toJS() as Manifest });
    }
  }
  return found;
}

type Container = {
  name: string;
  args?: string[];
  readinessProbe?: { httpGet?: { path: string } };
  livenessProbe?: { httpGet?: { path: string } };
  lifecycle?: { preStop?: unknown };
  resources?: { requests?: object; limits?: object };
  securityContext?: { allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean };
};
type PodSpec = { securityContext?: { runAsNonRoot?: boolean }; containers: Container[] };

function podSpecOf(manifest: Manifest): PodSpec {
  const spec = manifest.spec as { template: { spec: PodSpec } };
  return spec.template.spec;
}

describe("Kubernetes manifests (deploy/kubernetes)", () => {
  const manifests = loadManifests();
  const byKind = (kind: string) => manifests.filter(({ manifest }) => manifest.kind === kind);

  it("every manifest validates against the Kubernetes schemas", async () => {
    assert.ok(manifests.length >= 12, `found ${manifests.length}`);
    for (const { file, manifest } of manifests) {
      await assert.doesNotReject(
        validateManifest(manifest),
        `${file}: ${manifest.kind} ${manifest.metadata.name}`,
      );
    }
  });

  it("the validation fails on a broken manifest (a port as text, a Deployment without a selector)", async () => {
    const server = byKind("Deployment").find(({ manifest }) => manifest.metadata.name === "boxoffice-server");
    assert.ok(server);
    const broken = structuredClone(server.manifest) as Manifest & {
      spec: {
        selector?: unknown;
        template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } };
      };
    };
    broken.spec.template.spec.containers[0]!.ports[0]!.containerPort = "eighty";
    await assert.rejects(validateManifest(broken), /containerPort must be integer/);
    delete broken.spec.selector;
    await assert.rejects(validateManifest(broken), /selector/);
  });

  it("has what the setup needs: instances, balancer, Services, PDB, HPA, migrate Job, ConfigMap, Secret", () => {
    const kinds = new Set(manifests.map(({ manifest }) => manifest.kind));
    for (const kind of [
      "Namespace",
      "ConfigMap",
      "Secret",
      "Job",
      "Deployment",
      "Service",
      "PodDisruptionBudget",
      "HorizontalPodAutoscaler",
    ]) {
      assert.ok(kinds.has(kind), `missing a ${kind}`);
    }
    const kustomization = parse(readFileSync(join(DEPLOY, "kubernetes", "kustomization.yaml"), "utf8")) as {
      resources: string[];
    };
    for (const resource of kustomization.resources) {
      assert.ok(
        manifests.some(({ file }) => file === resource),
        `kustomization lists missing ${resource}`,
      );
    }
  });

  it("instances: /ready and /health probes, a preStop drain, limits, non-root, read-only, no migration", () => {
    const server = byKind("Deployment").find(({ manifest }) => manifest.metadata.name === "boxoffice-server");
    assert.ok(server);
    const pod = podSpecOf(server.manifest);
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    const [container] = pod.containers;
    assert.ok(container);
    assert.deepEqual(container.args, ["server"]);
    assert.equal(container.readinessProbe?.httpGet?.path, "/ready");
    assert.equal(container.livenessProbe?.httpGet?.path, "/health");
    assert.ok(container.lifecycle?.preStop);
    assert.ok(container.resources?.requests && container.resources.limits);
    assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
    assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
    const config = byKind("ConfigMap")[0]?.manifest as unknown as { data: Record<string, string> };
    assert.equal(config.data.BOXOFFICE_MIGRATE, "false");
    const job = byKind("Job")[0]?.manifest;
    assert.ok(job);
    assert.deepEqual((job.spec as { template: { spec: PodSpec } }).template.spec.containers[0]?.args, [
      "migrate",
    ]);
  });

  it("the balancer follows the headless Service by DNS", () => {
    const headless = byKind("Service").find(
      ({ manifest }) => (manifest.spec as { clusterIP?: string }).clusterIP === "None",
    );
    assert.ok(headless, "no headless Service");
    const lb = byKind("Deployment").find(({ manifest }) => manifest.metadata.name === "boxoffice-lb");
    assert.ok(lb);
    const args = podSpecOf(lb.manifest).containers[0]?.args ?? [];
    const dns = args[args.indexOf("--backends-dns") + 1];
    assert.equal(args[0], "lb");
    assert.equal(dns, `${headless.manifest.metadata.name}.boxoffice.svc.cluster.local:8080`);
  });
});

describe("compose file (deploy/compose/compose.yaml)", () => {
  type Service = {
    command?: string[];
    depends_on?: Record<string, { condition: string }> | string[];
    environment?: Record<string, string>;
  };
  const compose = parse(readFileSync(join(DEPLOY, "compose", "compose.yaml"), "utf8"), { merge: true }) as {
    services: Record<string, Service>;
  };
  const services = compose.services;

  it("PostgreSQL, Redis, a one-shot migrate the instances wait for, three instances, the balancer", () => {
    for (const name of ["postgres", "redis", "migrate", "server-1", "server-2", "server-3", "lb"]) {
      assert.ok(services[name], `no service ${name}`);
    }
    assert.deepEqual(services.migrate?.command, ["migrate"]);
    const instances = Object.keys(services).filter((name) => name.startsWith("server-"));
    for (const name of instances) {
      const service = services[name]!;
      assert.deepEqual(service.command, ["server"]);
      assert.deepEqual((service.depends_on as Record<string, { condition: string }>).migrate, {
        condition: "service_completed_successfully",
      });
      assert.equal(service.environment?.BOXOFFICE_MIGRATE, "false");
      assert.match(service.environment?.BOXOFFICE_STORE ?? "", /^postgres:\/\/boxoffice_app:/);
      assert.match(service.environment?.BOXOFFICE_LOCK ?? "", /^redis:\/\/redis:6379$/);
    }
    const lbCommand = services.lb?.command ?? [];
    const backends = lbCommand.filter((_, i) => lbCommand[i - 1] === "--backend");
    assert.deepEqual(
      backends,
      instances.map((name) => `http://${name}:8080`),
    );
  });

  it("every dependency names a service", () => {
    for (const [name, service] of Object.entries(services)) {
      const deps = Array.isArray(service.depends_on)
        ? service.depends_on
        : Object.keys(service.depends_on ?? {});
      for (const dep of deps) assert.ok(services[dep], `${name} depends on unknown ${dep}`);
    }
  });
});

describe("systemd units (deploy/systemd)", () => {
  const skip = skipUnlessInstalled("systemd-analyze", "--version");
  it("systemd-analyze verify finds nothing to say about any unit", { skip }, () => {
    const dir = mkdtempSync(join(tmpdir(), "boxoffice-units-"));
    const units = readdirSync(join(DEPLOY, "systemd")).filter((name) => /\.(service|target)$/.test(name));
    for (const unit of units) copyFileSync(join(DEPLOY, "systemd", unit), join(dir, unit));
    // A template is verified as one of its instances.
    copyFileSync(join(dir, "boxoffice-server@.service"), join(dir, "boxoffice-server@9101.service"));
    const check = (names: string[]) =>
      spawnSync("systemd-analyze", ["verify", ...names.map((name) => join(dir, name))], {
        encoding: "utf8",
        cwd: dir,
      });
    const result = check([
      "boxoffice-migrate.service",
      "boxoffice-lb.service",
      "boxoffice-server@9101.service",
    ]);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr.trim(), "");
    // It does speak up: a misspelt hardening directive.
    writeFileSync(join(dir, "typo.service"), "[Service]\nExecStart=/bin/true\nProtectSystm=strict\n");
    assert.match(check(["typo.service"]).stderr, /Unknown key 'ProtectSystm'/);
  });

  it("every unit drops privileges and reads the environment file", () => {
    for (const unit of ["boxoffice-migrate.service", "boxoffice-lb.service", "boxoffice-server@.service"]) {
      const text = readFileSync(join(DEPLOY, "systemd", unit), "utf8");
      for (const line of [
        "DynamicUser=yes",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "EnvironmentFile=/etc/boxoffice/boxoffice.env",
      ]) {
        assert.ok(text.includes(`\n${line}\n`), `${unit} lacks ${line}`);
      }
    }
  });
});

describe("Prometheus rules and Grafana dashboard (deploy/prometheus, deploy/grafana)", () => {
  const skip = skipUnlessInstalled("promtool", "--version");
  const rules = join(DEPLOY, "prometheus", "boxoffice-alerts.yaml");

  it("promtool check rules and promtool test rules pass", { skip }, () => {
    const checked = spawnSync("promtool", ["check", "rules", rules], { encoding: "utf8" });
    assert.equal(checked.status, 0, checked.stdout + checked.stderr);
    const tested = spawnSync(
      "promtool",
      ["test", "rules", join(DEPLOY, "prometheus", "boxoffice-alerts.test.yaml")],
      {
        encoding: "utf8",
      },
    );
    assert.equal(tested.status, 0, tested.stdout + tested.stderr);
  });

  it("promtool check rules refuses a broken rule", { skip }, () => {
    const dir = mkdtempSync(join(tmpdir(), "boxoffice-rules-"));
    const broken = join(dir, "broken.yaml");
    writeFileSync(
      broken,
      "groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(x[5m]\n",
    );
    assert.notEqual(spawnSync("promtool", ["check", "rules", broken]).status, 0);
  });

  it("uses only metrics that the instances and the balancer document", () => {
    const documented = new Set(
      [
        readFileSync(join(ROOT, "docs", "api.md"), "utf8"),
        readFileSync(join(ROOT, "docs", "balancer.md"), "utf8"),
      ]
        .join("\n")
        .match(/boxoffice_[a-z_]+/g),
    );
    const dashboard = readFileSync(join(DEPLOY, "grafana", "boxoffice-dashboard.json"), "utf8");
    const parsed = JSON.parse(dashboard) as { panels: { targets?: { expr: string }[] }[] };
    assert.ok(parsed.panels.filter((panel) => panel.targets).length >= 10);
    const used = `${dashboard}\n${readFileSync(rules, "utf8")}`.match(/boxoffice_[a-z_]+/g) ?? [];
    for (const name of new Set(used)) {
      const base = name.replace(/_(bucket|sum|count)$/, "");
      // Node's process metrics of the balancer: boxoffice_lb_process_*, boxoffice_lb_nodejs_*.
      if (/^boxoffice_lb_(process|nodejs)_/.test(base)) continue;
      assert.ok(documented.has(base), `${name} is not a documented metric`);
    }
  });
});
