"""Container-image functions: an ECR repository, an image built for the function's architecture, links inside.

``Function(..., image=True)`` deploys the handler's folder as a container image instead
of a zip (for dependencies over Lambda's 250 MB zip limit, such as LightGBM)::

    Function(
        "Valuation",
        handler="services/valuation/app.handler",   # build context services/valuation
        runtime="python3.11",
        architecture="arm64",
        memory=1536,
        image=True,                                  # services/valuation/Dockerfile, else a generated one
        link=[database],
    )
    Function("Migrator", handler="services/migrator/migrate.handler", image={"dockerfile": "Dockerfile.lambda"})

What it creates, as children of the function:

* an ECR repository ``{app}-{stage}-{name}`` (lowercase): scan on push, AES-256 at rest,
  a lifecycle policy keeping the ``keep`` most recent images (10), emptied on destroy in a
  removing stage and kept in a retaining one, and a repository policy letting only this
  function's Lambda service principal pull from it;
* a ``docker-build`` image built with BuildKit for ``linux/arm64`` or ``linux/amd64`` and
  pushed to that repository (Docker is needed only when deploying; a plan shows the build).
  Without a Dockerfile one is generated from AWS's base image
  (``public.ecr.aws/lambda/python:3.11``, ``public.ecr.aws/lambda/nodejs:22``) that installs
  ``requirements.txt`` (or ``package-lock.json`` with ``npm ci``) and copies the folder.

Links work exactly as in a zip: the encrypted ``resource.enc`` is written to
``.build/harbor/links/<function>/`` and copied into the image at ``/var/task/resource.enc``
(the last step of the Dockerfile, through a named build context; ``harbor_runtime`` joins it
at ``/var/task/harbor_runtime`` when the folder's Python imports it), and the function gets
the same ``SST_KEY``/``SST_KEY_FILE``/``SST_RESOURCE_App`` variables, so ``from sst import
Resource`` reads them unchanged. The provider decides whether to rebuild from a hash of the
folder's files (contents, names and modes, minus ``.dockerignore``'s patterns): keep
``__pycache__`` and local artifacts out with a ``.dockerignore``. The function runs the
image by digest (``<repository>@sha256:…``): an unchanged image leaves the function
untouched, and the same sources, Dockerfile and links always give the same build inputs (no
timestamps, relative paths, ``SOURCE_DATE_EPOCH=0``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.aws.packaging import RUNTIME_PACKAGE, iter_files, runtime_package_files, uses_runtime_package
from components.core.linking import KEY_FILE_NAME, LinkBundle

if TYPE_CHECKING:
    from components.aws.function import Function

LINK_CONTEXT = "harbor-links"
LINK_FILE_IN_IMAGE = f"/var/task/{KEY_FILE_NAME}"
PLATFORMS = {"arm64": "linux/arm64", "x86_64": "linux/amd64"}
BASE_IMAGES = {
    "python3.11": "public.ecr.aws/lambda/python:3.11",
    "python3.12": "public.ecr.aws/lambda/python:3.12",
    "python3.13": "public.ecr.aws/lambda/python:3.13",
    "nodejs20.x": "public.ecr.aws/lambda/nodejs:20",
    "nodejs22.x": "public.ecr.aws/lambda/nodejs:22",
}
# Lambda pulls with these two actions; nothing else is granted to its service principal.
LAMBDA_PULL_ACTIONS = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]


class ImageConfig(BaseModel):
    """How a container-image function is built.

    Example::

        image={"dockerfile": "Dockerfile", "keep": 5, "build_args": {"MODEL": "v3"}}
    """

    model_config = ConfigDict(extra="forbid")

    dockerfile: str | None = Field(
        None,
        description="a Dockerfile in the handler's folder (relative to it); default: its Dockerfile "
        "if there is one, else one generated from AWS's Lambda base image for the runtime",
    )
    keep: int = Field(10, ge=1, le=1000, description="images the repository keeps (newest first)")
    build_args: dict[str, str] = Field(default_factory=dict, description="Docker ARG values")

    @field_validator("dockerfile")
    @classmethod
    def _relative(cls, dockerfile: str | None) -> str | None:
        if dockerfile is not None and (Path(dockerfile).is_absolute() or ".." in Path(dockerfile).parts):
            raise ValueError(
                f"image.dockerfile {dockerfile!r} must be a path inside the handler's folder, e.g. 'Dockerfile'"
            )
        return dockerfile


def image_config(value: bool | ImageConfig | dict[str, Any]) -> ImageConfig | None:
    """The image settings of ``Function(image=...)``: None for a zip function."""
    if value is False or value is None:
        return None
    if value is True:
        return ImageConfig()
    return value if isinstance(value, ImageConfig) else ImageConfig.model_validate(value)


def generated_dockerfile(runtime: str, context: Path, command: str) -> str:
    """A Dockerfile from AWS's Lambda base image that installs the folder's dependencies."""
    lines = [f"FROM {BASE_IMAGES[runtime]}"]
    if runtime.startswith("python"):
        if (context / "requirements.txt").is_file():
            lines += [
                "COPY requirements.txt ${LAMBDA_TASK_ROOT}/",
                "RUN pip install --no-cache-dir -r ${LAMBDA_TASK_ROOT}/requirements.txt --target ${LAMBDA_TASK_ROOT}",
            ]
    elif (context / "package-lock.json").is_file():
        lines += ["COPY package.json package-lock.json ${LAMBDA_TASK_ROOT}/",
                  "RUN npm ci --omit=dev --prefix ${LAMBDA_TASK_ROOT}"]
    lines += ["COPY . ${LAMBDA_TASK_ROOT}/", f"CMD {json.dumps([command])}"]
    return "\n".join(lines) + "\n"


def needs_runtime_package(context: Path, runtime: str) -> bool:
    """Whether the folder's Python imports ``harbor_runtime``, which a zip would carry too."""
    return runtime.startswith("python") and uses_runtime_package(dict(iter_files(context)))


def with_link_file(dockerfile: str, runtime_package: bool = False) -> str:
    """The Dockerfile with the link file (and ``harbor_runtime``) copied in as its final steps."""
    steps = [f"COPY --from={LINK_CONTEXT} {KEY_FILE_NAME} {LINK_FILE_IN_IMAGE}"]
    if runtime_package:
        steps.append(f"COPY --from={LINK_CONTEXT} {RUNTIME_PACKAGE} /var/task/{RUNTIME_PACKAGE}")
    return (
        dockerfile.rstrip("\n")
        + "\n# harbor: linked resources, read by `from sst import Resource`\n"
        + "\n".join(steps)
        + "\n"
    )


def write_link_context(function_name: str, bundle: LinkBundle, runtime_package: bool = False) -> str:
    """Write what the build copies from the link context; the folder, relative to the program."""
    folder = Path(".build") / "harbor" / "links" / function_name
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {bundle.file_name: bundle.file_bytes}
    if runtime_package:
        files.update({name: path.read_bytes() for name, path in runtime_package_files().items()})
    for name, data in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_bytes() != data:
            target.write_bytes(data)
        # The provider's context hash covers file modes: fix them, whatever the umask.
        target.chmod(0o644)
    # The provider hashes the whole folder: leave nothing a previous build needed.
    for stale in sorted(folder.rglob("*"), reverse=True):
        relative = stale.relative_to(folder).as_posix()
        if stale.is_file() and relative not in files:
            stale.unlink()
        elif stale.is_dir() and not any(stale.iterdir()):
            stale.rmdir()
    return folder.as_posix()


def lifecycle_policy(keep: int) -> str:
    """ECR lifecycle rules: keep the ``keep`` newest images, expire the rest."""
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": 1,
                    "description": f"keep the {keep} most recent images",
                    "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
                    "action": {"type": "expire"},
                }
            ]
        },
        sort_keys=True,
    )


@dataclass
class FunctionCode:
    """What the Lambda function needs to run some code, and what identifies that code."""

    inputs: dict[str, Any]
    """``aws.lambda_.Function`` inputs: runtime/handler/code, or package type/image URI."""
    identity: pulumi.Output[str]
    """Changes exactly when the deployed code does (the zip's hash, the image's digest)."""
    waits_for: list[pulumi.Resource] = field(default_factory=list)
    """Resources the function must wait for (the repository policy that lets Lambda pull)."""


def dockerfile_for(function: Function, config: ImageConfig, context: Path, command: str) -> str:
    """The Dockerfile the image is built from, checked before the function creates anything."""
    if config.dockerfile is not None:
        path = context / config.dockerfile
        if not path.is_file():
            raise function.fail(f"image.dockerfile {config.dockerfile!r} does not exist in {_relative(context)}")
        return path.read_text()
    if (context / "Dockerfile").is_file():
        return (context / "Dockerfile").read_text()
    runtime = function.args.runtime
    if runtime not in BASE_IMAGES:
        raise function.fail(f"no Lambda base image for runtime {runtime!r}; add a Dockerfile to {_relative(context)}")
    return generated_dockerfile(runtime, context, command)


def image_function_code(
    function: Function,
    config: ImageConfig,
    dockerfile: str,
    context: Path,
    command: str,
    bundle: pulumi.Output[LinkBundle],
    function_name: str,
) -> FunctionCode:
    """The ECR repository, the image, and the Lambda inputs that run it by digest."""
    a = function.args
    relative_context = _relative(context)
    removing = function.stage.removal == "remove"
    repository = function.child(
        "repository",
        aws.ecr.Repository,
        {
            "name": function.physical_name("ecr.repository"),
            "image_tag_mutability": "MUTABLE",  # `latest` moves; the function pins a digest
            "image_scanning_configuration": {"scan_on_push": True},
            "encryption_configurations": [{"encryption_type": "AES256"}],
            "force_delete": removing,
        },
    )
    function.child(
        "lifecycle_policy",
        aws.ecr.LifecyclePolicy,
        {"repository": repository.name, "policy": lifecycle_policy(config.keep)},
    )
    identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=function))
    partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=function))
    region = function.stage.region
    function_arn = pulumi.Output.all(partition.partition, identity.account_id).apply(
        lambda parts: f"arn:{parts[0]}:lambda:{region}:{parts[1]}:function:{function_name}"
    )
    repository_policy = function.child(
        "repository_policy",
        aws.ecr.RepositoryPolicy,
        {
            "repository": repository.name,
            "policy": function_arn.apply(
                lambda arn: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "LambdaPull",
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": LAMBDA_PULL_ACTIONS,
                                "Condition": {"StringEquals": {"aws:sourceArn": arn}},
                            }
                        ],
                    },
                    sort_keys=True,
                )
            ),
        },
    )

    import pulumi_docker_build as docker_build  # only container functions need the plugin

    token = aws.ecr.get_authorization_token_output(
        registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=function)
    )
    runtime_package = needs_runtime_package(context, a.runtime)
    link_folder = bundle.apply(lambda b: write_link_context(function_name, b, runtime_package))
    link_hash = bundle.apply(lambda b: hashlib.sha256(b.file_bytes).hexdigest())
    image = function.child(
        "image",
        docker_build.Image,
        {
            "context": {"location": relative_context, "named": {LINK_CONTEXT: {"location": link_folder}}},
            "dockerfile": {"inline": with_link_file(dockerfile, runtime_package)},
            "platforms": [PLATFORMS[a.architecture]],
            "build_args": {"SOURCE_DATE_EPOCH": "0", **config.build_args},
            # The provider hashes the context and the named link context, so a link change
            # rebuilds; the label also shows in the image which link data it carries.
            "labels": {"harbor.links.sha256": link_hash},
            "push": True,
            # A preview shows the build without needing Docker; `pulumi up` builds and pushes.
            "build_on_preview": False,
            "tags": [repository.repository_url.apply(lambda url: f"{url}:latest")],
            "registries": [
                {
                    "address": repository.repository_url.apply(lambda url: url.split("/", 1)[0]),
                    "username": token.user_name,
                    "password": pulumi.Output.secret(token.password),
                }
            ],
        },
        opts=pulumi.ResourceOptions(depends_on=[repository]),
    )
    digest = image.digest
    image_uri = pulumi.Output.all(repository.repository_url, digest).apply(lambda parts: f"{parts[0]}@{parts[1]}")
    inputs = {"package_type": "Image", "image_uri": image_uri, "image_config": {"commands": [command]}}
    return FunctionCode(inputs=inputs, identity=digest, waits_for=[repository_policy])


def _relative(path: Path) -> str:
    """The path relative to the program folder (state holds no machine-specific absolute path)."""
    try:
        return Path(os.path.relpath(path, Path.cwd())).as_posix()
    except ValueError:
        return path.as_posix()
