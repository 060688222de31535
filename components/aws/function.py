"""Function: a Lambda function packaged from a source folder, linked like SST's.

Example (seed 001's API handlers)::

    create = Function(
        "CreateItem",
        handler="app/functions/items.create",   # folder app/functions, module items, function create
        link=[table, uploads],                  # `from sst import Resource` works in the handler
        memory=512,
        timeout=10,
    )
    Function("Worker", handler="app/functions/worker.main", vpc=vpc, retries=0)

Defaults: Python 3.12 on arm64, 1024 MB, 20 s, a log group ``/aws/lambda/<name>`` with
the stage's retention (created before the function, so Lambda never creates an
unmanaged one), a role with only the basic execution policy (plus VPC access in a
VPC) and exactly the linked resources' grants. Links travel in an encrypted
``resource.enc`` inside the archive; only three small variables go into the
environment, so links never press against Lambda's 4 KB environment limit.
Linking a function to another grants ``lambda:InvokeFunction`` on it only.

``image=True`` deploys the folder as a container image instead (components.aws.container), and
``run_on_deploy=`` invokes the function once after each deploy that changes it
(components.aws.run_on_deploy)::

    Function("Migrator", handler="services/migrator/migrate.handler", image=True,
             run_on_deploy={"after": [database]})
"""

from __future__ import annotations

import ast
import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.aws.container import FunctionCode, ImageConfig, dockerfile_for, image_config, image_function_code
from components.aws.packaging import PackageSpec, PackagingError, build_archive, module_file
from components.aws.run_on_deploy import RunOnDeploy, run_on_deploy
from components.core.base import COMPONENT_NAME, Component, ComponentArgs, ComponentError
from components.core.linking import KEY_FILE_NAME, LinkBundle, Permission, check_links, encode_links, link_data
from components.core.naming import stable_hash

Runtime = Literal["python3.12", "python3.13", "python3.11", "nodejs22.x", "nodejs20.x"]
Architecture = Literal["arm64", "x86_64"]

LAMBDA_TASK_ROOT = "/var/task"
ENVIRONMENT_LIMIT = 4096  # bytes, keys and values together, as Lambda counts them
_ENV_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Lambda sets these itself and refuses a function that tries to.
_RESERVED_ENV = frozenset(
    {"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_REGION", "AWS_EXECUTION_ENV", "AWS_LAMBDA_FUNCTION_NAME",
     "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
     "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
     "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT",
     "LAMBDA_RUNTIME_DIR"}
)
_LINK_ENV = frozenset({"SST_KEY", "SST_KEY_FILE", "SST_RESOURCE_App"})

BASIC_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
VPC_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
INVOKE_ACTIONS = ("lambda:InvokeFunction",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UrlConfig(_Strict):
    """A function URL. ``iam`` (the default) needs SigV4-signed requests; ``none`` is public."""

    auth: Literal["iam", "none"] = "iam"


class VpcConfig(_Strict):
    """Explicit placement: private subnets and the security groups of the function's ENIs."""

    subnet_ids: list[Any] = Field(min_length=1)
    security_group_ids: list[Any] = Field(min_length=1)


class FunctionArgs(ComponentArgs):
    """Arguments of :class:`Function`."""

    handler: str = Field(
        description="'<folder>/<module>.<function>', e.g. 'app/functions/items.create'; the folder "
        "is packaged (override with `bundle`)"
    )
    runtime: Runtime = "python3.12"
    architecture: Architecture = "arm64"
    memory: int = Field(1024, ge=128, le=10240, description="MB")
    timeout: int = Field(20, ge=1, le=900, description="seconds")
    environment: dict[str, Any] = Field(
        default_factory=dict, description="the function's own variables (strings or Outputs)"
    )
    link: list[Any] = Field(default_factory=list, description="linkable components")
    vpc: Any = Field(
        None, description="a Vpc component, or {'subnet_ids': [...], 'security_group_ids': [...]}"
    )
    permissions: list[Any] = Field(default_factory=list, description="extra IAM grants (Permission)")
    url: bool | UrlConfig = Field(False, description="True or {'auth': 'iam'|'none'}")
    reserved_concurrency: int | None = Field(None, ge=0)
    retries: int | None = Field(None, ge=0, le=2, description="async invocation retries (AWS: 2)")
    bundle: str | None = Field(None, description="package this folder instead of the handler's")
    description: str | None = Field(None, max_length=256)
    image: bool | ImageConfig = Field(
        False, description="deploy as a container image (True, or {'dockerfile', 'keep', 'build_args'}); "
        "see components.aws.container"
    )
    run_on_deploy: bool | RunOnDeploy = Field(
        False, description="invoke once after each deploy that changes the function (True, or "
        "{'after': [database], 'input': {...}}); see components.aws.run_on_deploy"
    )

    @field_validator("environment")
    @classmethod
    def _env_keys(cls, env: dict[str, Any]) -> dict[str, Any]:
        for key in env:
            if not _ENV_KEY.match(key):
                raise ValueError(f"environment variable {key!r} must be letters, digits and _")
            if key in _RESERVED_ENV:
                raise ValueError(f"environment variable {key!r} is set by Lambda itself; pick another name")
            if key in _LINK_ENV:
                raise ValueError(f"environment variable {key!r} carries link data; use link=[...]")
        return env

    @field_validator("permissions")
    @classmethod
    def _least_privilege(cls, permissions: list[Any]) -> list[Any]:
        for permission in permissions:
            if not isinstance(permission, Permission):
                raise ValueError(f"{permission!r} is not a Permission(actions=[...], resources=[...])")
            for action in permission.actions:
                if action == "*" or action.endswith(":*"):
                    raise ValueError(
                        f"permission action {action!r} grants a whole service; list the actions needed"
                    )
            if any(resource == "*" for resource in permission.resources):
                raise ValueError(
                    "permission resource '*' grants every resource; name the ARNs the function uses"
                )
        return permissions

    @model_validator(mode="after")
    def _handler_shape(self) -> FunctionArgs:
        parse_handler(self.handler)
        return self


class HandlerSpec(BaseModel):
    """A handler string taken apart."""

    folder: str
    module: tuple[str, ...]
    function: str


def parse_handler(handler: str) -> HandlerSpec:
    """'app/functions/items.create' -> folder app/functions, module ('items',), function create."""
    folder, _, rest = handler.strip().rpartition("/")
    module, _, function = rest.rpartition(".")
    if not folder or not module or not function or folder.startswith("/") or ".." in folder.split("/"):
        raise ValueError(
            f"handler {handler!r} must look like '<folder>/<module>.<function>' relative to the "
            "project, e.g. 'app/functions/items.create'"
        )
    if not re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", function):
        raise ValueError(f"handler {handler!r}: {function!r} is not a function name")
    return HandlerSpec(folder=folder.removeprefix("./"), module=tuple(module.split(".")), function=function)


def python_module_names(tree: ast.Module) -> dict[str, bool]:
    """Names a module binds at its top level, each marked True when it is a function.

    Read from the source without importing it: assignments, imports and definitions
    count, including those under a top-level ``if``/``try`` (a guarded import).
    """
    names: dict[str, bool] = {}

    def visit(statements: Sequence[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names[node.name] = True
            elif isinstance(node, ast.ClassDef):
                names.setdefault(node.name, False)
            elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for leaf in ast.walk(target):
                        if isinstance(leaf, ast.Name):
                            names.setdefault(leaf.id, False)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    names.setdefault((alias.asname or alias.name).split(".")[0], False)
            elif isinstance(node, ast.If | ast.Try | ast.With):
                for block in ("body", "orelse", "finalbody", "handlers"):
                    for part in getattr(node, block, []):
                        visit(part.body if isinstance(part, ast.ExceptHandler) else [part])

    visit(tree.body)
    return names


def environment_size(variables: Mapping[str, str]) -> int:
    """Bytes Lambda counts against its 4 KB limit: every key and value, UTF-8 encoded."""
    return sum(len(k.encode()) + len(str(v).encode()) for k, v in variables.items())


class Function(Component):
    """A Lambda function. Outputs: ``name``, ``arn``, ``invoke_arn``, ``url`` (None without a URL).

    Python attributes: ``function`` (the ``aws.lambda_.Function``), ``role``,
    ``log_group``, ``timeout_seconds``.
    Transformable children: ``function``, ``role``, ``execution_policy``, ``policy``,
    ``log_group``, ``url``, ``url_permission``, ``invoke_config``; with ``image``:
    ``repository``, ``lifecycle_policy``, ``repository_policy``, ``image``; with
    ``run_on_deploy``: ``run_on_deploy``.
    """

    type_token: ClassVar[str] = "harbor:aws:Function"
    sst_type: ClassVar[str] = "sst.aws.Function"
    Args: ClassVar[type[ComponentArgs]] = FunctionArgs
    transformable: ClassVar[tuple[str, ...]] = (
        "function", "role", "execution_policy", "policy", "log_group", "url", "url_permission",
        "invoke_config", "repository", "lifecycle_policy", "repository_policy", "image", "run_on_deploy",
    )

    args: FunctionArgs

    def __init__(
        self,
        name: str,
        args: FunctionArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, args, opts, **kwargs)
        a = self.args
        package, lambda_handler = self._package
        image, dockerfile = self._image
        vpc_config = self._vpc

        function_name = self.physical_name("lambda.function")
        self.log_group = self.child(
            "log_group",
            aws.cloudwatch.LogGroup,
            {"name": f"/aws/lambda/{function_name}", "retention_in_days": self.stage.log_retention_days},
        )
        self.role = self.child(
            "role",
            aws.iam.Role,
            {
                "name": self.physical_name("iam.role"),
                "assume_role_policy": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                ),
            },
        )
        # Everything the role needs is a dependency of the function: created before it, and on
        # destroy detached only after Lambda has deleted the function (and, in a VPC, released
        # its network interfaces, which needs the VPC access policy still in place).
        role_grants: list[pulumi.Resource] = []
        for managed in [BASIC_EXECUTION_POLICY] + ([VPC_EXECUTION_POLICY] if vpc_config else []):
            role_grants.append(self.child(
                "execution_policy",
                aws.iam.RolePolicyAttachment,
                {"role": self.role.name, "policy_arn": managed},
                key=managed.rsplit("/", 1)[-1],
            ))
        grants = [p for link in self.links for p in link.link_permissions()] + list(a.permissions)
        policy = None
        if grants:
            policy = self.child(
                "policy",
                aws.iam.RolePolicy,
                {"role": self.role.id, "policy": _policy_document(grants)},
            )

        bundle = link_data(self.links).apply(
            lambda data: encode_links(
                data,
                app=self.app.name,
                stage=self.stage.name,
                key_file=f"{LAMBDA_TASK_ROOT}/{KEY_FILE_NAME}",
            )
        )
        code = self._code(package, lambda_handler, bundle, function_name, image, dockerfile)
        variables = pulumi.Output.all(pulumi.Output.from_input(a.environment), bundle).apply(
            lambda parts: self._environment(parts[0], parts[1])
        )
        depends: list[pulumi.Resource] = [self.log_group, *role_grants, *code.waits_for] + ([policy] if policy else [])
        self.function: aws.lambda_.Function = self.child(
            "function",
            aws.lambda_.Function,
            {
                "name": function_name,
                "description": a.description,
                "architectures": [a.architecture],
                **code.inputs,
                "memory_size": a.memory,
                "timeout": a.timeout,
                "role": self.role.arn,
                "environment": {"variables": variables},
                "logging_config": {"log_format": "Text", "log_group": self.log_group.name},
                "reserved_concurrent_executions": a.reserved_concurrency,
                "vpc_config": vpc_config,
            },
            opts=pulumi.ResourceOptions(depends_on=depends),
        )
        if a.retries is not None:
            self.child(
                "invoke_config",
                aws.lambda_.FunctionEventInvokeConfig,
                {"function_name": self.function.name, "maximum_retry_attempts": a.retries},
            )
        self.code_identity: pulumi.Output[str] = code.identity
        self.invocation: aws.lambda_.Invocation | None = (
            run_on_deploy(self, a.run_on_deploy, variables) if a.run_on_deploy else None
        )
        self.url: pulumi.Output[str] | None = self._function_url()
        self.name: pulumi.Output[str] = self.function.name
        self.arn: pulumi.Output[str] = self.function.arn
        self.invoke_arn: pulumi.Output[str] = self.function.invoke_arn
        outputs: dict[str, Any] = {"name": self.name, "arn": self.arn}
        if self.url is not None:
            outputs["url"] = self.url
        self.register_outputs(outputs)

    def validate(self) -> None:
        """Links, the handler's file and function, the VPC and the environment, before registering."""
        self.timeout_seconds: int = self.args.timeout
        self.links = self._checked_links()
        self._package = self._package_spec()
        self._image = self._image_spec(self._package)
        self._vpc = self._vpc_config()
        self._check_static_environment()

    # -- building blocks -------------------------------------------------------------------
    def _checked_links(self) -> list[Any]:
        try:
            return check_links(self.args.link)
        except pulumi.RunError as error:
            raise self.fail(str(error)) from None

    def _package_spec(self) -> tuple[PackageSpec, str]:
        """What to zip, and the handler as Lambda names it inside that zip."""
        a = self.args
        handler = parse_handler(a.handler)
        folder = Path(a.bundle.rstrip("/")) if a.bundle else Path(handler.folder)
        root = Path.cwd()
        source = (root / folder).resolve()
        if not source.is_dir():
            raise self.fail(f"bundle folder {folder} does not exist (relative to {root})")
        try:
            inner = (root / handler.folder).resolve().relative_to(source)
        except ValueError:
            raise self.fail(f"handler {a.handler!r} is not inside the bundle folder {folder}") from None
        module = (*inner.parts, *handler.module)
        found = module_file(source, module, a.runtime)
        if found is None:
            kind = ".py" if a.runtime.startswith("python") else ".js/.mjs/.cjs"
            raise self.fail(
                f"handler {a.handler!r}: no {kind} file for module {'/'.join(module)} in {folder}; "
                "check the path or the runtime"
            )
        if a.runtime.startswith("python"):
            self._check_python_handler(found, handler.function)
        joiner = "." if a.runtime.startswith("python") else "/"
        return (
            PackageSpec(source=source, runtime=a.runtime, architecture=a.architecture),
            f"{joiner.join(module)}.{handler.function}",
        )

    def _check_python_handler(self, module: Path, function: str) -> None:
        """Lambda imports the module and looks the handler up by name; a typo fails every call."""
        shown = _portable(module)
        try:
            tree = ast.parse(module.read_bytes(), filename=shown)
        except SyntaxError as error:
            raise self.fail(
                f"handler {self.args.handler!r}: {shown} line {error.lineno} is not valid Python "
                f"({error.msg}); fix the syntax"
            ) from None
        defined = python_module_names(tree)
        if function not in defined:
            functions = sorted(name for name, is_function in defined.items() if is_function)
            hint = f"; it defines {', '.join(functions)}" if functions else "; it defines no function"
            raise self.fail(
                f"handler {self.args.handler!r}: {shown} has no top-level {function!r}{hint}. "
                "Fix the name after the last dot"
            )

    def _image_spec(self, package: tuple[PackageSpec, str]) -> tuple[ImageConfig | None, str | None]:
        """``image=``'s settings and the Dockerfile it builds from (checked before registering)."""
        image = image_config(self.args.image)
        if image is None:
            return None, None
        return image, dockerfile_for(self, image, package[0].source, package[1])

    def _code(
        self,
        package: PackageSpec,
        handler: str,
        bundle: pulumi.Output[LinkBundle],
        function_name: str,
        image: ImageConfig | None,
        dockerfile: str | None,
    ) -> FunctionCode:
        """A zip built from the folder, or a container image (``image=``)."""
        if image is not None and dockerfile is not None:
            return image_function_code(self, image, dockerfile, package.source, handler, bundle, function_name)
        archive = bundle.apply(lambda b: self._build(package, b))
        inputs = {
            "runtime": self.args.runtime,
            "handler": handler,
            "code": archive.apply(lambda built: pulumi.FileArchive(_portable(built.path))),
            "source_code_hash": archive.apply(lambda built: built.sha256_base64),
        }
        return FunctionCode(inputs=inputs, identity=inputs["source_code_hash"])

    def _build(self, spec: PackageSpec, bundle: LinkBundle):
        try:
            return build_archive(spec, {bundle.file_name: bundle.file_bytes})
        except PackagingError as error:
            raise self.fail(str(error)) from None

    def _vpc_config(self) -> dict[str, Any] | None:
        vpc = self.args.vpc
        if vpc is None:
            return None
        if isinstance(vpc, Mapping):
            try:
                config = VpcConfig.model_validate(dict(vpc))
            except ValueError as error:
                raise self.fail(f"vpc must be a Vpc or {{'subnet_ids', 'security_group_ids'}}: {error}") from None
            return {"subnet_ids": config.subnet_ids, "security_group_ids": config.security_group_ids}
        subnets = _first_attr(vpc, "private_subnet_ids")
        groups = _first_attr(vpc, "security_group_ids")
        if groups is None and _first_attr(vpc, "security_group_id") is not None:
            groups = [vpc.security_group_id]
        if subnets is None or groups is None:
            raise self.fail(
                f"vpc {vpc!r} has no private_subnet_ids/security_group_id(s); pass a Vpc component "
                "or {'subnet_ids': [...], 'security_group_ids': [...]}"
            )
        return {"subnet_ids": subnets, "security_group_ids": groups}

    def _check_static_environment(self) -> None:
        known = {k: v for k, v in self.args.environment.items() if isinstance(v, str | int | float | bool)}
        self._check_environment_size(known)

    def _check_environment_size(
        self, variables: Mapping[str, Any], links: Mapping[str, str] | None = None
    ) -> None:
        """Refuse an environment over Lambda's 4 KB: ``variables`` plus the link variables.

        Before the links are encoded, the link variables are counted at their fixed size
        (the key is always 44 base64 characters); once encoded, as they are.
        """
        if links is None:
            links = {"SST_RESOURCE_App": json.dumps({"name": self.app.name, "stage": self.stage.name}),
                     "SST_KEY": "x" * 44, "SST_KEY_FILE": f"{LAMBDA_TASK_ROOT}/{KEY_FILE_NAME}"}
        link_room = environment_size(links)
        size = environment_size(variables)
        if size + link_room > ENVIRONMENT_LIMIT:
            biggest = sorted(variables, key=lambda k: -environment_size({k: variables[k]}))[:3]
            listed = ", ".join(f"{k} ({environment_size({k: variables[k]})} bytes)" for k in biggest)
            raise self.fail(
                f"environment is {size} bytes and Lambda allows {ENVIRONMENT_LIMIT - link_room} "
                f"besides the link variables (4 KB in all); the biggest are {listed}. Move large "
                "values into a linked resource (link=[...]) or a Secret, which travel in the archive"
            )

    def _environment(self, user: Mapping[str, Any], bundle: LinkBundle) -> dict[str, str]:
        variables = {k: str(v) for k, v in user.items()}
        self._check_environment_size(variables, bundle.environment)
        return {**variables, **bundle.environment}

    def _function_url(self) -> pulumi.Output[str] | None:
        url = self.args.url
        if url is False:
            return None
        config = url if isinstance(url, UrlConfig) else UrlConfig()
        public = config.auth == "none"
        function_url = self.child(
            "url",
            aws.lambda_.FunctionUrl,
            {"function_name": self.function.name, "authorization_type": "NONE" if public else "AWS_IAM"},
        )
        if public:
            # A public URL needs both grants since AWS's October 2025 change; either alone gives 403.
            self.child(
                "url_permission",
                aws.lambda_.Permission,
                {"action": "lambda:InvokeFunctionUrl", "function": self.function.name,
                 "principal": "*", "function_url_auth_type": "NONE"},
                key="url",
            )
            self.child(
                "url_permission",
                aws.lambda_.Permission,
                {"action": "lambda:InvokeFunction", "function": self.function.name,
                 "principal": "*", "invoked_via_function_url": True},
                key="invoke",
            )
        return function_url.function_url

    # -- Linkable ----------------------------------------------------------------------------
    def link_properties(self) -> dict[str, pulumi.Input[Any]]:
        return {"name": self.name}

    def link_permissions(self) -> Sequence[Permission]:
        return [Permission(INVOKE_ACTIONS, [self.arn])]


def _first_attr(obj: Any, *names: str) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _portable(path: Path) -> str:
    """The archive path relative to the program folder when inside it.

    The path is recorded in state; a relative one is the same on every machine, so a
    laptop and CI deploying the same sources see no difference.
    """
    try:
        return os.path.relpath(path, Path.cwd()) if path.is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def _policy_document(grants: Sequence[Permission]) -> pulumi.Output[str]:
    statements = [grant.statement() for grant in grants]
    return pulumi.Output.all(*statements).apply(
        lambda resolved: json.dumps({"Version": "2012-10-17", "Statement": list(resolved)}, sort_keys=True)
    )


def function_key(key: str) -> str:
    """A component-name-safe form of a key such as a route: 'GET /items/{id}' -> 'GetItemsId'."""
    words = re.findall(r"[A-Za-z0-9]+", key)
    text = "".join(w[:1].upper() + w[1:].lower() if w.isupper() else w[:1].upper() + w[1:] for w in words)
    return text or "Default"


def allow_invoke(
    owner: Component,
    function: Function,
    principal: str,
    source_arn: pulumi.Input[str],
    *,
    role: str = "permission",
    key: str | None = None,
    source_account: pulumi.Input[str] | None = None,
) -> aws.lambda_.Permission:
    """Let one AWS service invoke ``function`` for one source only, as a child of ``owner``.

    Every event source (API routes, bucket notifications, topics, Cognito triggers,
    schedules' rules) grants the same way; the caller makes what it creates wait for it.

    Example::

        allow_invoke(self, function, "sns.amazonaws.com", self.arn, key="Notify")
    """
    args: dict[str, Any] = {
        "action": "lambda:InvokeFunction",
        "function": function.name,
        "principal": principal,
        "source_arn": source_arn,
    }
    if source_account is not None:
        args["source_account"] = source_account
    return owner.child(role, aws.lambda_.Permission, args, key=key)


def resolve_function(owner: Component, key: str, spec: Function | str | Mapping[str, Any]) -> Function:
    """A Function for ``spec``: an existing Function as is, else a new one parented to ``owner``.

    ``spec`` is a handler string (``"app/functions/items.create"``) or a dict of
    :class:`Function` arguments. The new function is named after the owner and ``key``
    (a route key, a subscription name), so it is stable across deploys.
    """
    if isinstance(spec, Function):
        return spec
    name = f"{owner.component_name}{function_key(key)}"
    if not COMPONENT_NAME.match(name):
        name = f"{name[:55]}{stable_hash(name)}"
    if isinstance(spec, str):
        arguments: dict[str, Any] = {"handler": spec}
    elif isinstance(spec, Mapping):
        arguments = dict(spec)
    else:
        raise ComponentError(
            f"{type(owner).__name__} {owner.component_name!r}: {key!r} needs a Function, a handler "
            f"string like 'app/functions/items.create' or a dict of Function arguments, not {spec!r}"
        )
    return Function(name, arguments, opts=pulumi.ResourceOptions(parent=owner))
