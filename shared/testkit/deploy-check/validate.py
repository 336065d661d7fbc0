"""Validates the deployment files offline, with validators shipped by PyPI packages:
deploy/k8s/*.yaml against Kubernetes' own schemas (kubernetes-validate, strict: unknown fields are
errors) and docker-compose.yml against the Compose specification (compose-spec, the compose-spec
model: unknown keys and values are errors). Prints one line per file; exits non-zero if any file is
invalid. Run by shared/testkit/tests/it/deploy_files.rs."""

import glob
import json
import os
import sys

import compose_spec
import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
KUBERNETES_VERSION = "1.37.0"


def check_kubernetes(path):
    with open(path) as f:
        documents = [d for d in yaml.safe_load_all(f) if d]
    if not documents:
        raise ValueError(f"{path}: no resources")
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    return f"{len(documents)} resources valid for Kubernetes {KUBERNETES_VERSION}"


def check_compose(path):
    with open(path) as f:
        compose = yaml.safe_load(f)  # applies YAML merge keys (<<: *anchor) as Compose does
    # x- fragments are only anchors for the services; the specification allows them anywhere.
    compose = {key: value for key, value in compose.items() if not key.startswith("x-")}
    compose_spec.PyCompose.from_json(json.dumps(compose)).validate()
    return f"{len(compose.get('services', {}))} services valid for the Compose specification"


def main():
    failed = False
    files = [(p, check_kubernetes) for p in sorted(glob.glob(os.path.join(REPO, "deploy", "k8s", "*.yaml")))]
    files.append((os.path.join(REPO, "docker-compose.yml"), check_compose))
    for path, check in files:
        name = os.path.relpath(path, REPO)
        try:
            print(f"ok {name}: {check(path)}")
        except Exception as error:  # noqa: BLE001 - report any failure with its file
            failed = True
            print(f"INVALID {name}: {str(error).splitlines()[0]}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
