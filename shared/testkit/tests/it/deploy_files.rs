//! No Docker engine runs here, so the deployment files are kept honest by reading them: every binary
//! the workspace builds has a compose service with a health check, and the Dockerfile builds them all.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::Deserialize as _;
use serde_yaml_ng::Value;

use auth_testkit::SUITE_BINARIES as BINARIES;

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
}

fn read(path: &str) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(repo_file(path))?)
}

#[test]
fn compose_runs_every_binary_with_health_checks_and_the_infrastructure() -> anyhow::Result<()> {
    let mut compose: Value = serde_yaml_ng::from_str(&read("docker-compose.yml")?)?;
    // YAML merge keys (`<<: *anchor`), as Docker Compose applies them
    compose.apply_merge()?;
    let services = compose["services"].as_mapping().expect("services mapping");

    let mut commands = BTreeSet::new();
    for (name, service) in services {
        let name = name.as_str().expect("service names are strings");
        let command = match &service["command"] {
            Value::String(command) => command.split_whitespace().next().unwrap_or_default().to_string(),
            Value::Sequence(parts) => parts.first().and_then(Value::as_str).unwrap_or_default().to_string(),
            _ => String::new(),
        };
        if BINARIES.contains(&command.as_str()) {
            assert!(
                service.get("healthcheck").is_some(),
                "service {name} has no healthcheck"
            );
            let depends = service["depends_on"].as_mapping().expect("depends_on with conditions");
            assert!(
                depends.contains_key("postgres"),
                "service {name} must wait for postgres"
            );
            commands.insert(command);
        }
    }
    let expected: BTreeSet<String> = BINARIES.iter().map(|b| b.to_string()).collect();
    assert_eq!(commands, expected, "every binary runs in compose");

    for infrastructure in ["postgres", "nats", "mailpit", "otel-collector"] {
        assert!(
            services.contains_key(infrastructure),
            "{infrastructure} missing from compose"
        );
    }
    let nats_command = format!("{:?}", services["nats"]["command"]);
    assert!(
        nats_command.contains("-js"),
        "NATS must run with JetStream: {nats_command}"
    );
    Ok(())
}

#[test]
fn dockerfile_builds_every_binary() -> anyhow::Result<()> {
    let dockerfile = read("deploy/Dockerfile")?;
    for binary in BINARIES {
        assert!(dockerfile.contains(binary), "deploy/Dockerfile does not ship {binary}");
    }
    assert!(dockerfile.contains("SQLX_OFFLINE"), "builds without a database");
    Ok(())
}

#[test]
fn kubernetes_manifests_cover_every_binary() -> anyhow::Result<()> {
    let dir = repo_file("deploy/k8s");
    let mut text = String::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let content = std::fs::read_to_string(&path)?;
            for document in serde_yaml_ng::Deserializer::from_str(&content) {
                let _: Value = serde::Deserialize::deserialize(document)?;
            }
            text.push_str(&content);
        }
    }
    for binary in BINARIES {
        assert!(text.contains(binary), "deploy/k8s does not run {binary}");
    }
    Ok(())
}

/// NATS carries email requests and rate-limit buckets: the compose file and the Kubernetes manifests
/// make it ask for credentials, give them to the suite as secrets, and (compose) keep its port inside.
#[test]
fn nats_requires_credentials_and_stays_private() -> anyhow::Result<()> {
    let mut compose: Value = serde_yaml_ng::from_str(&read("docker-compose.yml")?)?;
    compose.apply_merge()?;
    let nats = &compose["services"]["nats"];
    assert!(nats.get("ports").is_none(), "the NATS port is not published");
    let command: Vec<&str> = nats["command"]
        .as_sequence()
        .expect("a command list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        command.contains(&"--user") && command.contains(&"--pass"),
        "{command:?}"
    );
    for (name, service) in compose["services"].as_mapping().expect("services") {
        let Some(environment) = service.get("environment").and_then(Value::as_mapping) else {
            continue;
        };
        if environment.contains_key("NATS_URL") {
            assert!(
                environment.contains_key("NATS_USER") && environment.contains_key("NATS_PASSWORD"),
                "{name:?}"
            );
        }
    }
    let manifests = read("deploy/k8s/suite.yaml")?;
    let secret = serde_yaml_ng::Deserializer::from_str(&manifests)
        .map(Value::deserialize)
        .filter_map(Result::ok)
        .find(|doc| doc["kind"] == "Secret")
        .expect("a Secret");
    assert!(
        secret["stringData"].get("NATS_PASSWORD").is_some(),
        "NATS credentials are a secret"
    );
    Ok(())
}

/// The Kubernetes manifests against Kubernetes' own schemas (strict) and the compose file against the
/// Compose specification, offline, with the validators `deploy/local/test` installs
/// (`shared/testkit/deploy-check`).
#[test]
fn deploy_files_are_valid_for_kubernetes_and_compose() -> anyhow::Result<()> {
    let check = repo_file("shared/testkit/deploy-check");
    let python = check.join(".venv/bin/python");
    anyhow::ensure!(
        python.exists(),
        "{} is missing: deploy/local/test installs the validators",
        python.display()
    );
    let output = std::process::Command::new(python)
        .arg(check.join("validate.py"))
        .output()?;
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.contains("ok deploy/k8s/suite.yaml") && report.contains("ok docker-compose.yml"),
        "{report}"
    );
    Ok(())
}

/// What a platform team expects of the manifests: resources, a disruption budget per Deployment,
/// autoscaling for the gateway and the notifier, network policies that expose only the gateway, and
/// secrets only from the Secret.
#[test]
fn kubernetes_manifests_have_what_a_platform_team_expects() -> anyhow::Result<()> {
    let manifests = read("deploy/k8s/suite.yaml")?;
    let documents: Vec<Value> = serde_yaml_ng::Deserializer::from_str(&manifests)
        .map(Value::deserialize)
        .collect::<Result<_, _>>()?;
    fn of<'a>(documents: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
        documents.iter().filter(move |d| d["kind"] == kind)
    }
    let of_kind = |kind: &'static str| of(&documents, kind);
    let deployments: Vec<&Value> = of_kind("Deployment").collect();
    assert_eq!(deployments.len(), 6);
    for deployment in &deployments {
        let name = deployment["metadata"]["name"].as_str().unwrap_or_default();
        for container in deployment["spec"]["template"]["spec"]["containers"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let resources = &container["resources"];
            assert!(
                resources["requests"].get("cpu").is_some() && resources["limits"].get("memory").is_some(),
                "{name}"
            );
            for variable in container["env"].as_sequence().into_iter().flatten() {
                let variable_name = variable["name"].as_str().unwrap_or_default();
                let secret_like = ["SECRET", "PASSWORD", "TOKEN", "DATABASE_URL", "KEY"]
                    .iter()
                    .any(|word| variable_name.contains(word));
                assert!(
                    !(secret_like && !variable_name.ends_with("_FILE") && variable.get("value").is_some()),
                    "{name}: {variable_name} must come from the Secret, not a literal"
                );
            }
            // Secrets arrive as files from the mounted Secret, not as environment values.
            let env_from = container["envFrom"].as_sequence().into_iter().flatten();
            assert!(
                env_from.into_iter().all(|source| source.get("secretRef").is_none()),
                "{name}"
            );
            let mounts = container["volumeMounts"].as_sequence().into_iter().flatten();
            assert!(
                mounts
                    .into_iter()
                    .any(|m| m["name"] == "secrets" && m["readOnly"] == true),
                "{name} mounts the Secret read-only"
            );
        }
        assert!(
            of_kind("PodDisruptionBudget").any(|p| p["metadata"]["name"].as_str() == Some(name)),
            "{name} has no PodDisruptionBudget"
        );
    }
    let autoscaled: BTreeSet<&str> = of_kind("HorizontalPodAutoscaler")
        .filter_map(|h| h["spec"]["scaleTargetRef"]["name"].as_str())
        .collect();
    assert_eq!(autoscaled, BTreeSet::from(["auth-gateway", "auth-notification"]));
    let policies: Vec<&Value> = of_kind("NetworkPolicy").collect();
    let open_to_all: Vec<&str> = policies
        .iter()
        .filter(|p| {
            p["spec"]["ingress"]
                .as_sequence()
                .is_some_and(|rules| rules.iter().any(|rule| rule.get("from").is_none()))
        })
        .filter_map(|p| p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"].as_str())
        .collect();
    assert_eq!(
        open_to_all,
        vec!["auth-gateway"],
        "only the gateway is reachable from anywhere"
    );
    assert!(
        policies.iter().any(|p| p["spec"].get("ingress").is_none()),
        "a default-deny policy"
    );
    let config = of_kind("ConfigMap").next().expect("a ConfigMap");
    for secret in ["DATABASE_URL", "GOTRUE_JWT_SECRET", "NATS_PASSWORD"] {
        assert!(
            config["data"].get(secret).is_none(),
            "{secret} must not be in the ConfigMap"
        );
    }
    Ok(())
}
