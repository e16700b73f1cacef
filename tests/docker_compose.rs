//! The structure of `docker/compose.yml` (no Docker engine is needed): every file it mounts
//! or builds from exists, ports are published on 127.0.0.1 only and do not clash, the six
//! services exist with pinned images, credentials come from `docker/.env` (every `${VAR}`
//! is in `.env.example`), and the configs it mounts agree with the services: Prometheus
//! scrapes steward's metrics port and loads the mounted rules, Grafana's datasources name
//! services and their ports, and the dashboards provider reads the mounted dashboards.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use e2e::repo_root;
use serde_yaml::Value;

const SERVICES: [&str; 6] = [
    "kafka",
    "clickhouse",
    "prometheus",
    "alertmanager",
    "grafana",
    "steward",
];

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

#[test]
fn services_exist_with_pinned_images_and_loopback_ports() -> Result<()> {
    let svcs = services(&compose()?)?;
    for name in SERVICES {
        ensure!(svcs.contains_key(name), "no service {name}");
    }
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

    // steward serves metrics on all interfaces in its container, on the published port.
    let steward = &svcs["steward"];
    let addr = steward["environment"]["STEWARD_METRICS_ADDR"]
        .as_str()
        .context("steward has no STEWARD_METRICS_ADDR")?;
    let port: u16 = addr.rsplit_once(':').context(addr.to_owned())?.1.parse()?;
    ensure!(
        addr.starts_with("0.0.0.0:"),
        "steward listens on {addr} in its container"
    );
    ensure!(
        ports["steward"].contains(&port),
        "steward's metrics port {port} is not published"
    );

    let jobs = config["scrape_configs"]
        .as_sequence()
        .context("scrape_configs")?;
    let job = jobs
        .iter()
        .find(|j| j["job_name"] == "steward")
        .context("no scrape job \"steward\" (StewardPipelineDown watches up{job=\"steward\"})")?;
    let targets: Vec<&str> = job["static_configs"][0]["targets"]
        .as_sequence()
        .context("targets")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    ensure!(
        targets == [format!("steward:{port}")],
        "steward targets {targets:?}"
    );

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
                let plugins = env["GF_INSTALL_PLUGINS"].as_str().unwrap_or_default();
                ensure!(
                    plugins.split(',').any(|p| p.trim() == kind),
                    "plugin {kind} is not installed"
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
        let mut ids = BTreeSet::new();
        for panel in doc["panels"].as_array().context("panels")? {
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
