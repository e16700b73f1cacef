//! The structure of `docker/compose.yml` (no Docker engine is needed): every file it mounts
//! or builds from exists, ports are published on 127.0.0.1 only and do not clash, the
//! services exist with pinned images (and a pinned Grafana plugin) and a healthcheck each,
//! the Dockerfile compiles the dependencies in a layer of their own, credentials come from
//! `docker/.env` (every `${VAR}` is in `.env.example`), and the configs it mounts agree with
//! the services: Prometheus scrapes the live pipeline as job "steward" (which every alert
//! rule and, by default, the overview dashboard read) and the demo run as "steward-demo",
//! loads the mounted rules, Grafana's datasources name services and their ports, and the
//! dashboards provider reads the mounted dashboards (issue 19 item 3).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use e2e::promql::selectors;
use e2e::repo_root;
use serde_yaml::Value;

const SERVICES: [&str; 8] = [
    "kafka",
    "clickhouse",
    "prometheus",
    "alertmanager",
    "grafana",
    "steward",
    "steward-live",
    "steward-web",
];

/// The port of a steward service's `STEWARD_METRICS_ADDR`, which must listen on every
/// interface of its container.
fn metrics_port(service: &Value, name: &str) -> Result<u16> {
    let addr = service["environment"]["STEWARD_METRICS_ADDR"]
        .as_str()
        .with_context(|| format!("{name} has no STEWARD_METRICS_ADDR"))?;
    ensure!(
        addr.starts_with("0.0.0.0:"),
        "{name} listens on {addr} in its container"
    );
    Ok(addr.rsplit_once(':').context(addr.to_owned())?.1.parse()?)
}

/// The command of a service's healthcheck, as one string.
fn healthcheck(service: &Value, name: &str) -> Result<String> {
    let test = service["healthcheck"]["test"]
        .as_sequence()
        .with_context(|| format!("{name} has no healthcheck"))?;
    Ok(test
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" "))
}

fn docker_dir() -> PathBuf {
    repo_root().join("docker")
}

fn yaml(path: &Path) -> Result<Value> {
    serde_yaml::from_str(
        &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("parsing {}", path.display()))
}

fn compose() -> Result<Value> {
    yaml(&docker_dir().join("compose.yml"))
}

fn services(c: &Value) -> Result<BTreeMap<String, Value>> {
    let map = c["services"].as_mapping().context("no services")?;
    Ok(map
        .iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
        .collect())
}

/// A service's bind mounts (host path resolved against docker/, container path).
fn binds(service: &Value) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for v in service["volumes"].as_sequence().into_iter().flatten() {
        let spec = v.as_str().context("long volume syntax is not used here")?;
        let mut parts = spec.split(':');
        let (src, dst) = (
            parts.next().unwrap_or_default(),
            parts.next().context(spec.to_owned())?,
        );
        if src.starts_with('.') || src.starts_with('/') {
            out.push((docker_dir().join(src), dst.to_owned()));
        }
    }
    Ok(out)
}

/// `(host ip, host port, container port)` of a service's published ports.
fn ports(service: &Value) -> Result<Vec<(String, u16, u16)>> {
    let mut out = Vec::new();
    for p in service["ports"].as_sequence().into_iter().flatten() {
        let spec = p.as_str().context("ports are strings")?;
        let parts: Vec<&str> = spec.split(':').collect();
        let [ip, host, container] = parts[..] else {
            bail!("port {spec:?} does not name the host address");
        };
        out.push((ip.to_owned(), host.parse()?, container.parse()?));
    }
    Ok(out)
}

/// The container port a service listens on, for URLs between services: its published
/// container ports.
fn container_ports(svcs: &BTreeMap<String, Value>) -> Result<BTreeMap<String, BTreeSet<u16>>> {
    svcs.iter()
        .map(|(n, s)| Ok((n.clone(), ports(s)?.into_iter().map(|p| p.2).collect())))
        .collect()
}

/// Where a host path of the repository is mounted in a service.
fn mount_of(service: &Value, host: &Path) -> Result<String> {
    let want = host.canonicalize()?;
    for (src, dst) in binds(service)? {
        if src.canonicalize().ok() == Some(want.clone()) {
            return Ok(dst);
        }
    }
    bail!("{} is not mounted", host.display())
}

/// The paths of the crates that the workspace's `[patch]` tables take from its own tree.
fn patched_paths() -> Result<Vec<String>> {
    let manifest: toml::Table = std::fs::read_to_string(repo_root().join("Cargo.toml"))?.parse()?;
    let registries = manifest.get("patch").and_then(toml::Value::as_table);
    Ok(registries
        .into_iter()
        .flat_map(|r| r.values())
        .filter_map(toml::Value::as_table)
        .flat_map(|crates| crates.values())
        .filter_map(|c| Some(c.get("path")?.as_str()?.to_owned()))
        .collect())
}

#[test]
fn services_exist_with_pinned_images_and_loopback_ports() -> Result<()> {
    let svcs = services(&compose()?)?;
    for name in SERVICES {
        ensure!(svcs.contains_key(name), "no service {name}");
    }
    let dockerfile = std::fs::read_to_string(docker_dir().join("Dockerfile"))?;
    let runtime = dockerfile
        .rsplit("\nFROM ")
        .next()
        .context("no runtime stage")?;
    for (name, s) in &svcs {
        let check = healthcheck(s, name)?;
        if !s["build"].is_null() || s["image"] == svcs["steward"]["image"] {
            let tool = check.split_whitespace().nth(1).unwrap_or_default();
            ensure!(
                runtime.contains(&format!(" {tool}")),
                "{name}'s healthcheck runs {tool}, which the runtime image does not install"
            );
        }
    }
    let live = &svcs["steward-live"];
    let port = metrics_port(live, "steward-live")?;
    ensure!(
        healthcheck(live, "steward-live")?.contains(&format!("127.0.0.1:{port}/readyz")),
        "steward-live's healthcheck is not its /readyz"
    );
    let mut host_ports = BTreeSet::new();
    for (name, s) in &svcs {
        if let Some(image) = s["image"].as_str() {
            let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
            ensure!(tag != "latest", "{name}: image {image} is not pinned");
        }
        for (ip, host, _) in ports(s)? {
            ensure!(ip == "127.0.0.1", "{name}: port {host} published on {ip}");
            ensure!(
                host_ports.insert(host),
                "{name}: host port {host} published twice"
            );
        }
        for dep in s["depends_on"]
            .as_sequence()
            .map(|v| {
                v.iter()
                    .filter_map(|d| d.as_str().map(String::from))
                    .collect()
            })
            .or_else(|| {
                s["depends_on"].as_mapping().map(|m| {
                    m.keys()
                        .filter_map(|k| k.as_str().map(String::from))
                        .collect::<Vec<_>>()
                })
            })
            .unwrap_or_default()
        {
            ensure!(svcs.contains_key(&dep), "{name} depends on unknown {dep}");
            if s["depends_on"][dep.as_str()]["condition"] == "service_healthy" {
                ensure!(
                    !svcs[&dep]["healthcheck"].is_null(),
                    "{name} waits for {dep} to be healthy, but {dep} has no healthcheck"
                );
            }
        }
        // A service without a build uses a pinned image or the one another service builds.
        if s["build"].is_null() {
            let image = s["image"].as_str().context(format!("{name}: no image"))?;
            let built = svcs
                .values()
                .any(|o| !o["build"].is_null() && o["image"].as_str() == Some(image));
            ensure!(
                built || image.contains(':'),
                "{name}: image {image} is neither pinned nor built here"
            );
        }
    }
    Ok(())
}

#[test]
fn every_mounted_or_built_file_exists() -> Result<()> {
    let c = compose()?;
    let declared: BTreeSet<String> = c["volumes"]
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for (name, s) in services(&c)? {
        for v in s["volumes"].as_sequence().into_iter().flatten() {
            let spec = v.as_str().context("volume")?;
            let src = spec.split(':').next().unwrap_or_default();
            if src.starts_with('.') || src.starts_with('/') {
                let p = docker_dir().join(src);
                ensure!(
                    p.exists(),
                    "{name}: mounts {} which does not exist",
                    p.display()
                );
            } else {
                ensure!(
                    declared.contains(src),
                    "{name}: volume {src} is not declared"
                );
            }
        }
        if !s["build"].is_null() {
            let ctx = docker_dir().join(s["build"]["context"].as_str().unwrap_or("."));
            ensure!(
                ctx.is_dir(),
                "{name}: build context {} missing",
                ctx.display()
            );
            let dockerfile = ctx.join(s["build"]["dockerfile"].as_str().unwrap_or("Dockerfile"));
            let text = std::fs::read_to_string(&dockerfile)
                .with_context(|| format!("{name}: {}", dockerfile.display()))?;
            ensure!(
                text.contains("cargo build --release --locked -p pipeline --bin steward"),
                "the Dockerfile does not build steward"
            );
            // The dependencies compile in a layer that only the manifests change.
            let build = text
                .split("\nFROM ")
                .find(|stage| stage.contains("cargo build --release"))
                .context("no build stage")?;
            let cook = build
                .find("cargo chef cook")
                .context("no cargo chef cook")?;
            let sources = build.find("COPY . .").context("no COPY of the sources")?;
            ensure!(
                cook < sources,
                "dependencies are built after the sources are copied"
            );
            // The recipe holds the workspace's crates only: a crate that the workspace
            // patches in from its own tree (D111) must be copied before the cook.
            for path in patched_paths()? {
                let copied = build[..cook].lines().any(|line| {
                    line.strip_prefix("COPY ")
                        .and_then(|args| args.split_whitespace().next())
                        .is_some_and(|src| Path::new(&path).starts_with(src))
                });
                ensure!(
                    copied,
                    "the patched crate {path} is not copied before the dependencies are built"
                );
            }
            for tool in ["cmake", "build-essential", "zlib1g-dev"] {
                ensure!(
                    text.contains(tool),
                    "the Dockerfile does not install {tool}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn credentials_come_from_the_env_file() -> Result<()> {
    let text = std::fs::read_to_string(docker_dir().join("compose.yml"))?;
    let example = std::fs::read_to_string(docker_dir().join(".env.example"))?;
    let defined: BTreeSet<&str> = example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
        .collect();
    let mut used = BTreeSet::new();
    for part in text.split("${").skip(1) {
        let var = part
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .unwrap_or_default();
        used.insert(var.to_owned());
    }
    ensure!(!used.is_empty(), "compose.yml uses no ${{VAR}}");
    for v in &used {
        ensure!(
            defined.contains(v.as_str()),
            "${{{v}}} is not in docker/.env.example"
        );
    }
    // Secrets are never written into compose.yml itself.
    for (name, s) in services(&compose()?)? {
        for (k, v) in s["environment"].as_mapping().into_iter().flatten() {
            let (k, v) = (
                k.as_str().unwrap_or_default(),
                v.as_str().unwrap_or_default(),
            );
            if k.contains("PASSWORD") || k.ends_with("_USER") {
                ensure!(
                    v.starts_with("${"),
                    "{name}: {k} is not taken from docker/.env"
                );
            }
        }
    }
    let ignore = std::fs::read_to_string(docker_dir().join(".gitignore"))?;
    ensure!(
        ignore.lines().any(|l| l.trim() == ".env"),
        "docker/.env is not git-ignored"
    );
    Ok(())
}

#[test]
fn prometheus_scrapes_steward_and_loads_the_mounted_rules() -> Result<()> {
    let svcs = services(&compose()?)?;
    let ports = container_ports(&svcs)?;
    let prom = &svcs["prometheus"];
    let config_mount = binds(prom)?
        .into_iter()
        .find(|(_, dst)| dst == "/etc/prometheus/prometheus.yml")
        .context("no prometheus.yml mounted")?;
    let config = yaml(&config_mount.0)?;

    // The live pipeline is job "steward" (what the rules watch), the demo "steward-demo";
    // each serves metrics on all interfaces in its container, on a published port.
    let jobs = config["scrape_configs"]
        .as_sequence()
        .context("scrape_configs")?;
    for (job_name, service) in [("steward", "steward-live"), ("steward-demo", "steward")] {
        let port = metrics_port(&svcs[service], service)?;
        ensure!(
            ports[service].contains(&port),
            "{service}'s metrics port {port} is not published"
        );
        let job = jobs
            .iter()
            .find(|j| j["job_name"] == job_name)
            .with_context(|| format!("no scrape job {job_name:?}"))?;
        let targets: Vec<&str> = job["static_configs"][0]["targets"]
            .as_sequence()
            .context("targets")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        ensure!(
            targets == [format!("{service}:{port}")],
            "job {job_name} targets {targets:?}"
        );
    }
    // The web service serves its metrics on its one port.
    let web = jobs
        .iter()
        .find(|j| j["job_name"] == "steward-web")
        .context("no scrape job \"steward-web\"")?;
    ensure!(
        web["static_configs"][0]["targets"][0] == "steward-web:8080"
            && ports["steward-web"].contains(&8080),
        "job steward-web: {web:?}"
    );
    // Every alert rule reads job "steward" only, so the demo never fires one.
    let rules =
        std::fs::read_to_string(repo_root().join("dashboards/prometheus/rules/steward.yml"))?;
    let rules: Value = serde_yaml::from_str(&rules)?;
    for group in rules["groups"].as_sequence().context("groups")? {
        for rule in group["rules"].as_sequence().context("rules")? {
            let expr = rule["expr"].as_str().context("expr")?;
            for s in selectors(expr)? {
                ensure!(
                    !s.name.starts_with("steward_") || s.matchers.starts_with("{job=\"steward\""),
                    "{}: {} does not select job \"steward\"",
                    rule["alert"].as_str().unwrap_or_default(),
                    s.name
                );
            }
        }
    }

    let am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
        .as_str()
        .context("no alertmanager target")?;
    let (host, am_port) = am.split_once(':').context(am.to_owned())?;
    ensure!(host == "alertmanager" && ports["alertmanager"].contains(&am_port.parse()?));

    let rules_dir = mount_of(prom, &repo_root().join("dashboards/prometheus/rules"))?;
    let rule_files: Vec<&str> = config["rule_files"]
        .as_sequence()
        .context("rule_files")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    ensure!(
        rule_files == [format!("{rules_dir}/*.yml")],
        "rule_files {rule_files:?} do not load {rules_dir}"
    );
    let am_config = binds(&svcs["alertmanager"])?
        .into_iter()
        .find(|(_, d)| d == "/etc/alertmanager/alertmanager.yml")
        .context("no alertmanager.yml mounted")?;
    let am_config = yaml(&am_config.0)?;
    let receivers: BTreeSet<&str> = am_config["receivers"]
        .as_sequence()
        .context("receivers")?
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    ensure!(
        am_config["route"]["receiver"]
            .as_str()
            .is_some_and(|r| receivers.contains(r)),
        "the route's receiver is not defined"
    );
    Ok(())
}

#[test]
fn grafana_datasources_and_dashboards_match_the_services() -> Result<()> {
    let svcs = services(&compose()?)?;
    let ports = container_ports(&svcs)?;
    let grafana = &svcs["grafana"];
    let root = repo_root().join("dashboards/grafana");
    ensure!(
        mount_of(grafana, &root.join("provisioning"))? == "/etc/grafana/provisioning",
        "provisioning is not mounted at /etc/grafana/provisioning"
    );
    let env = &grafana["environment"];
    let mut uids = BTreeSet::new();
    for entry in std::fs::read_dir(root.join("provisioning/datasources"))? {
        let doc = yaml(&entry?.path())?;
        for ds in doc["datasources"].as_sequence().context("datasources")? {
            let url = ds["url"].as_str().context("datasource url")?;
            let hostport = url.trim_start_matches("http://").trim_end_matches('/');
            let (host, port) = hostport.split_once(':').context(url.to_owned())?;
            ensure!(
                svcs.contains_key(host),
                "datasource {url}: no service {host}"
            );
            ensure!(
                ports[host].contains(&port.parse()?),
                "datasource {url}: {host} has no port {port}"
            );
            let kind = ds["type"].as_str().context("type")?;
            if !["prometheus", "alertmanager", "loki"].contains(&kind) {
                // `id version`, comma-separated: a plugin without a version is not pinned.
                let plugins = env["GF_INSTALL_PLUGINS"].as_str().unwrap_or_default();
                let plugin = plugins
                    .split(',')
                    .map(|p| p.split_whitespace().collect::<Vec<_>>())
                    .find(|p| p.first() == Some(&kind))
                    .with_context(|| format!("plugin {kind} is not installed"))?;
                ensure!(
                    plugin.get(1).is_some_and(|v| v.split('.').count() == 3),
                    "plugin {kind} is not pinned to a version: {plugins}"
                );
            }
            // ${VAR}s in provisioning come from grafana's environment.
            let text = serde_yaml::to_string(ds)?;
            for part in text.split("${").skip(1) {
                let var = part.split('}').next().unwrap_or_default();
                ensure!(
                    !env[var].is_null(),
                    "datasource uses ${{{var}}}, not in grafana's environment"
                );
            }
            uids.insert(ds["uid"].as_str().context("uid")?.to_owned());
        }
    }
    let dashboards_at = mount_of(grafana, &root.join("dashboards"))?;
    let mut providers = 0;
    for entry in std::fs::read_dir(root.join("provisioning/dashboards"))? {
        let doc = yaml(&entry?.path())?;
        for p in doc["providers"].as_sequence().context("providers")? {
            ensure!(
                p["options"]["path"] == dashboards_at.as_str(),
                "provider path is not {dashboards_at}"
            );
            providers += 1;
        }
    }
    ensure!(providers >= 1, "no dashboard provider");
    // Every panel's datasource is a provisioned one; uids and panel ids are unique.
    let mut dashboards = BTreeSet::new();
    for entry in std::fs::read_dir(root.join("dashboards"))? {
        let path = entry?.path();
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        let uid = doc["uid"].as_str().context("dashboard uid")?;
        ensure!(
            dashboards.insert(uid.to_owned()),
            "dashboard uid {uid} twice"
        );
        // A Prometheus dashboard shows one steward at a time: `$job`, "steward" by default.
        let job_var = doc["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == "job");
        let mut ids = BTreeSet::new();
        for panel in doc["panels"].as_array().context("panels")? {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let Some(expr) = target["expr"].as_str() else {
                    continue;
                };
                // Steward's series and its `up`, not Prometheus's own `ALERTS`.
                for s in selectors(expr)?
                    .into_iter()
                    .filter(|s| s.name.starts_with("steward_") || s.name == "up")
                {
                    ensure!(
                        job_var.is_some_and(|v| v["current"]["value"] == "steward"),
                        "{}: no $job variable defaulting to steward",
                        path.display()
                    );
                    ensure!(
                        s.matchers.starts_with("{job=\"$job\""),
                        "{}: panel {} does not select $job: {expr}",
                        path.display(),
                        panel["title"]
                    );
                }
            }
            let id = panel["id"].as_u64().context("panel id")?;
            ensure!(ids.insert(id), "{}: panel id {id} twice", path.display());
            let uid = panel["datasource"]["uid"].as_str().unwrap_or_default();
            ensure!(
                uids.contains(uid),
                "{}: panel {} uses datasource {uid:?}",
                path.display(),
                panel["title"]
            );
        }
    }
    Ok(())
}
