"""CognitoUserPool: users who sign in with an email or a phone number, and the app clients they use.

Example (seed 003's mobile app)::

    users = CognitoUserPool(
        "Users",
        sign_in="email",
        mfa="optional",
        mfa_methods=["totp"],
        password={"minimum_length": 12},
        custom_attributes={"plan": {"type": "string", "max_length": 32}},
        triggers={"pre_sign_up": "app/functions/auth.pre_sign_up"},
    )
    mobile = users.add_client("Mobile", auth_flows=["custom", "user-srp"], access_token_minutes=60)
    api.route("POST /batches", "app/functions/batches.create", auth=mobile)  # a JWT authorizer
    Function("Admin", handler="app/functions/admin.main", link=[users, mobile])

Defaults: sign-in by email, case-insensitive, with the sign-in attribute verified by
a code; a 12-character password with every character class and 7-day temporary
passwords; recovery through the verified sign-in attribute; MFA off unless asked for;
AWS-side deletion protection whenever the stage protects its data. The pool follows
the stage's removal policy like every data store: kept (and protected) on stages that
keep data, deleted with the stage otherwise, since deleting a pool deletes its users.

Phone sign-in, phone verification, phone recovery and SMS MFA send text messages
through SNS: the pool then gets a role Cognito assumes (with an external id, so no
other pool can use it) that may only publish SMS.

A client from ``add_client`` has no secret unless ``public=False`` (a browser or a
mobile app cannot keep one), refuses the legacy password flow unless asked, hides
whether a user exists, and can revoke its refresh tokens. Passing a client (or
``pool.jwt(client)``) as a route's ``auth`` makes API Gateway accept the pool's tokens
for that client: issuer ``https://cognito-idp.<region>.amazonaws.com/<poolId>``,
audience the client id (Cognito's access tokens carry it as ``client_id``, which API
Gateway accepts in place of ``aud``).

Linking the pool gives ``Resource.<Name>.id`` and user-management actions on this pool
only; linking a client gives ``Resource.<Name>.id`` (and ``secret`` for a confidential one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pulumi
import pulumi_aws as aws
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from components.core.base import COMPONENT_NAME, Component, ComponentArgs
from components.core.linking import Permission
from components.core.naming import stable_hash

if TYPE_CHECKING:
    from components.aws.function import Function

SignIn = Literal["email", "phone", "email-or-phone", "username"]
Verify = Literal["email", "phone"]
MfaMode = Literal["off", "optional", "on"]
MfaMethod = Literal["totp", "sms"]
Recovery = Literal["email", "phone", "email-then-phone", "phone-then-email", "admin-only"]
AttributeType = Literal["string", "number", "boolean", "datetime"]

_ATTRIBUTE_TYPES = {"string": "String", "number": "Number", "boolean": "Boolean", "datetime": "DateTime"}
_CUSTOM_NAME = re.compile(r"^[A-Za-z0-9_]{1,20}$")  # Cognito: 1-20 characters after "custom:"
MAX_CUSTOM_ATTRIBUTES = 50

# Each Lambda trigger Cognito offers, as lambda_config names it.
TRIGGERS = (
    "pre_sign_up",
    "custom_message",
    "post_confirmation",
    "pre_authentication",
    "post_authentication",
    "define_auth_challenge",
    "create_auth_challenge",
    "verify_auth_challenge_response",
    "pre_token_generation",
    "user_migration",
)
_CHALLENGE_TRIGGERS = ("define_auth_challenge", "create_auth_challenge", "verify_auth_challenge_response")

AUTH_FLOWS = {
    "user-srp": "ALLOW_USER_SRP_AUTH",
    "refresh-token": "ALLOW_REFRESH_TOKEN_AUTH",
    "custom": "ALLOW_CUSTOM_AUTH",
    "user-auth": "ALLOW_USER_AUTH",
    "user-password": "ALLOW_USER_PASSWORD_AUTH",
    "admin-user-password": "ALLOW_ADMIN_USER_PASSWORD_AUTH",
}
AuthFlow = Literal["user-srp", "refresh-token", "custom", "user-auth", "user-password", "admin-user-password"]

# What server code usually does with a pool: look users up, create, update, disable them.
LINK_ACTIONS = (
    "cognito-idp:AdminAddUserToGroup",
    "cognito-idp:AdminConfirmSignUp",
    "cognito-idp:AdminCreateUser",
    "cognito-idp:AdminDeleteUser",
    "cognito-idp:AdminDisableUser",
    "cognito-idp:AdminEnableUser",
    "cognito-idp:AdminGetUser",
    "cognito-idp:AdminInitiateAuth",
    "cognito-idp:AdminListGroupsForUser",
    "cognito-idp:AdminRemoveUserFromGroup",
    "cognito-idp:AdminRespondToAuthChallenge",
    "cognito-idp:AdminUpdateUserAttributes",
    "cognito-idp:AdminUserGlobalSignOut",
    "cognito-idp:DescribeUserPool",
    "cognito-idp:ListUsers",
)


# Cognito's standard attributes (OpenID Connect's), the only ones that can be required.
STANDARD_ATTRIBUTES = (
    "address", "birthdate", "email", "family_name", "gender", "given_name", "locale", "middle_name",
    "name", "nickname", "phone_number", "picture", "preferred_username", "profile", "updated_at",
    "website", "zoneinfo",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class PasswordPolicy(_Strict):
    """What a password must contain. Cognito accepts lengths 6-99."""

    minimum_length: int = Field(12, ge=6, le=99)
    require_lowercase: bool = True
    require_uppercase: bool = True
    require_numbers: bool = True
    require_symbols: bool = True
    temporary_password_days: int = Field(
        7, ge=1, le=365, description="how long an administrator-issued password works"
    )


class RequiredAttribute(_Strict):
    """How a required standard attribute behaves; ``mutable=False`` fixes it after sign-up."""

    mutable: bool = True


class CustomAttribute(_Strict):
    """A custom attribute, read and written as ``custom:<name>``. Cognito never deletes one."""

    type: AttributeType = "string"
    mutable: bool = True
    min_length: int | None = Field(None, ge=0, le=2048, description="strings only")
    max_length: int | None = Field(None, ge=1, le=2048, description="strings only")
    min_value: int | None = Field(None, description="numbers only")
    max_value: int | None = Field(None, description="numbers only")

    @model_validator(mode="after")
    def _constraints_fit_the_type(self) -> CustomAttribute:
        if self.type != "string" and (self.min_length is not None or self.max_length is not None):
            raise ValueError(f"min_length/max_length apply to string attributes, not {self.type}")
        if self.type != "number" and (self.min_value is not None or self.max_value is not None):
            raise ValueError(f"min_value/max_value apply to number attributes, not {self.type}")
        for low, high, what in ((self.min_length, self.max_length, "length"),
                                (self.min_value, self.max_value, "value")):
            if low is not None and high is not None and low > high:
                raise ValueError(f"min_{what} {low} is above max_{what} {high}")
        return self


class VerificationMessage(_Strict):
    """The message carrying a verification code; ``{####}`` is where the code goes."""

    email_subject: str | None = Field(None, max_length=140)
    email_message: str | None = Field(None, max_length=20000)
    sms_message: str | None = Field(None, max_length=140)

    @model_validator(mode="after")
    def _code_placeholder(self) -> VerificationMessage:
        for field in ("email_message", "sms_message"):
            text = getattr(self, field)
            if text is not None and "{####}" not in text:
                raise ValueError(f"verification.{field} must contain {{####}}, where Cognito puts the code")
        return self


class EmailSending(_Strict):
    """Send from your own SES identity instead of Cognito's (which allows few emails a day)."""

    from_address: str = Field(description="e.g. 'Kefir <no-reply@kefirproducer.com>'")
    ses_identity_arn: str = Field(pattern=r"^arn:aws[a-z-]*:ses:[a-z0-9-]+:\d{12}:identity/.+$")
    reply_to: str | None = None


class CognitoUserPoolArgs(ComponentArgs):
    """Arguments of :class:`CognitoUserPool`."""

    sign_in: SignIn = Field(
        "email", description="what users sign in with: email, phone, email-or-phone, or a username"
    )
    verify: list[Verify] | None = Field(
        None, description="attributes Cognito verifies with a code; default: the sign-in attribute(s)"
    )
    verification: VerificationMessage | None = None
    mfa: MfaMode = Field("off", description="off, optional (each user chooses) or on (everyone)")
    mfa_methods: list[MfaMethod] = Field(
        default_factory=list, description="second factors users may set up: totp (an app), sms"
    )
    recovery: Recovery | None = Field(
        None, description="how a forgotten password is reset; default: the sign-in attribute"
    )
    password: PasswordPolicy = Field(default_factory=PasswordPolicy)
    custom_attributes: dict[str, CustomAttribute] = Field(default_factory=dict)
    required_attributes: list[str] | dict[str, RequiredAttribute] = Field(
        default_factory=list,
        description="standard attributes every user must have (['name', 'email'], or "
        "{'email': {'mutable': False}}); fixed when the pool is created",
    )
    triggers: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Lambda triggers ({', '.join(TRIGGERS)}): a Function, handler string or dict",
    )
    self_sign_up: bool = Field(True, description="False: only administrators create users")
    email: EmailSending | None = Field(None, description="default: Cognito's own email sender")
    deletion_protection: bool | None = Field(None, description="default: the stage's protect")

    @field_validator("custom_attributes")
    @classmethod
    def _custom_names(cls, attributes: dict[str, CustomAttribute]) -> dict[str, CustomAttribute]:
        if len(attributes) > MAX_CUSTOM_ATTRIBUTES:
            raise ValueError(f"{len(attributes)} custom attributes; Cognito allows {MAX_CUSTOM_ATTRIBUTES}")
        for name in attributes:
            if name.startswith("custom:"):
                raise ValueError(f"custom attribute {name!r}: give the name without 'custom:'; it is added")
            if not _CUSTOM_NAME.match(name):
                raise ValueError(f"custom attribute {name!r} must be 1-20 letters, digits or _")
        return attributes

    @field_validator("triggers")
    @classmethod
    def _known_triggers(cls, triggers: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(triggers) - set(TRIGGERS))
        if unknown:
            raise ValueError(f"unknown trigger {', '.join(map(repr, unknown))}; use {', '.join(TRIGGERS)}")
        return triggers

    @model_validator(mode="after")
    def _consistent(self) -> CognitoUserPoolArgs:
        if self.mfa == "off" and self.mfa_methods:
            raise ValueError("mfa_methods need mfa='optional' or 'on'")
        if self.mfa != "off" and not self.mfa_methods:
            raise ValueError(
                f"mfa={self.mfa!r} needs at least one method (AWS refuses the pool otherwise); "
                "set mfa_methods=['totp'] or ['sms']"
            )
        custom = sorted(set(self.required_attributes) - set(STANDARD_ATTRIBUTES))
        if custom:
            raise ValueError(
                f"required_attributes {', '.join(map(repr, custom))} are not standard attributes; "
                "custom attributes cannot be required (Cognito refuses them): check them in a "
                "pre_sign_up trigger instead"
            )
        if len(set(self.mfa_methods)) != len(self.mfa_methods):
            raise ValueError("mfa_methods lists a method twice")
        present = set(self.required_attributes) | {"email", "phone_number"}
        recovery = self.recovery or ""
        if "phone" in recovery and "phone" not in self.sign_in and "phone_number" not in present:
            raise ValueError("recovery by phone needs users with a phone_number")
        present_challenge = [t for t in _CHALLENGE_TRIGGERS if t in self.triggers]
        if present_challenge and len(present_challenge) != len(_CHALLENGE_TRIGGERS):
            missing = [t for t in _CHALLENGE_TRIGGERS if t not in self.triggers]
            raise ValueError(
                f"custom authentication needs all three challenge triggers; add {', '.join(missing)}"
            )
        return self

    @property
    def required(self) -> dict[str, RequiredAttribute]:
        """Required standard attributes with their settings, whichever form was given."""
        if isinstance(self.required_attributes, dict):
            return dict(self.required_attributes)
        return {name: RequiredAttribute() for name in self.required_attributes}

    @property
    def sign_in_attributes(self) -> list[str]:
        return {"email": ["email"], "phone": ["phone_number"], "email-or-phone": ["email", "phone_number"],
                "username": []}[self.sign_in]

    @property
    def verified(self) -> list[str]:
        if self.verify is not None:
            return sorted({"email": "email", "phone": "phone_number"}[v] for v in set(self.verify))
        return self.sign_in_attributes or ["email"]


class CognitoUserPoolClientArgs(ComponentArgs):
    """Arguments of :meth:`CognitoUserPool.add_client`. Token lifetimes as Cognito allows them."""

    public: bool = Field(True, description="a browser or mobile app: no client secret")
    auth_flows: list[AuthFlow] = Field(
        default_factory=lambda: ["user-srp"],
        description="how the app signs users in; refresh-token is always added",
    )
    access_token_minutes: int = Field(60, ge=5, le=1440, description="5 minutes to 1 day")
    id_token_minutes: int = Field(60, ge=5, le=1440, description="5 minutes to 1 day")
    refresh_token_days: int = Field(30, ge=1, le=3650, description="1 day to 10 years")
    read_attributes: list[str] | None = Field(None, description="default: every attribute")
    write_attributes: list[str] | None = Field(None, description="default: every mutable attribute")

    @model_validator(mode="after")
    def _flows(self) -> CognitoUserPoolClientArgs:
        if self.public and "admin-user-password" in self.auth_flows:
            raise ValueError(
                "admin-user-password is for servers holding AWS credentials; a public client cannot "
                "use it (set public=False for a server-side client)"
            )
        return self


class CognitoUserPoolClient(Component):
    """An app client of a :class:`CognitoUserPool`; create it with ``pool.add_client(...)``.

    Outputs: ``id``, ``secret`` (None for public clients). Transformable children: ``client``.
    """

    type_token: ClassVar[str] = "harbor:aws:CognitoUserPoolClient"
    sst_type: ClassVar[str] = "sst.aws.CognitoUserPoolClient"
    Args: ClassVar[type[ComponentArgs]] = CognitoUserPoolClientArgs
    transformable: ClassVar[tuple[str, ...]] = ("client",)

    args: CognitoUserPoolClientArgs

    def __init__(
        self,
        name: str,
        pool: CognitoUserPool,
        args: CognitoUserPoolClientArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        # Pulumi names a child by its parent's type, not its parent's name: prefixing the pool
        # keeps "Web" of two pools apart. Handlers still read it as Resource.<name>.
        super().__init__(f"{pool.component_name}{name}", args, opts, **kwargs)
        a = self.args
        self.pool = pool
        self.client_name = name
        flows = sorted({AUTH_FLOWS[f] for f in [*a.auth_flows, "refresh-token"]})
        self.client = self.child(
            "client",
            aws.cognito.UserPoolClient,
            {
                "name": self.physical_name(name=f"{pool.component_name}-{name}"),
                "user_pool_id": pool.id,
                "generate_secret": not a.public,
                "explicit_auth_flows": flows,
                "access_token_validity": a.access_token_minutes,
                "id_token_validity": a.id_token_minutes,
                "refresh_token_validity": a.refresh_token_days,
                "token_validity_units": {
                    "access_token": "minutes", "id_token": "minutes", "refresh_token": "days",
                },
                "prevent_user_existence_errors": "ENABLED",
                "enable_token_revocation": True,
                "read_attributes": a.read_attributes,
                "write_attributes": a.write_attributes,
            },
        )
        self.id: pulumi.Output[str] = self.client.id
        self.secret: pulumi.Output[str] | None = (
            None if a.public else pulumi.Output.secret(self.client.client_secret)
        )
        self.register_outputs({"id": self.id})

    def jwt(self, scopes: Sequence[str] = ()) -> dict[str, Any]:
        """The ``auth`` of an API route that accepts this client's tokens (see the module doc)."""
        return self.pool.jwt(self, scopes)

    @property
    def link_name(self) -> str:
        return self.client_name

    # -- Linkable ------------------------------------------------------------------------
    def link_properties(self) -> dict[str, pulumi.Input[Any]]:
        properties: dict[str, pulumi.Input[Any]] = {"id": self.id}
        if self.secret is not None:
            properties["secret"] = self.secret
        return properties

    def link_permissions(self) -> Sequence[Permission]:
        return []


class CognitoUserPool(Component):
    """A Cognito user pool.

    Outputs: ``id``, ``arn``, ``issuer`` (the JWT issuer URL). ``clients`` holds the
    clients made by :meth:`add_client`, ``triggers`` the trigger functions by name.
    Transformable children: ``user_pool``, ``sms_role``, ``sms_role_policy``, ``permission``.
    """

    type_token: ClassVar[str] = "harbor:aws:CognitoUserPool"
    sst_type: ClassVar[str] = "sst.aws.CognitoUserPool"
    Args: ClassVar[type[ComponentArgs]] = CognitoUserPoolArgs
    transformable: ClassVar[tuple[str, ...]] = ("user_pool", "sms_role", "sms_role_policy", "permission")

    args: CognitoUserPoolArgs

    def __init__(
        self,
        name: str,
        args: CognitoUserPoolArgs | Mapping[str, Any] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, args, opts, **kwargs)
        a = self.args
        self.clients: dict[str, CognitoUserPoolClient] = {}
        # Trigger functions first: the pool names their ARNs, and each gets its permission after.
        self.triggers: dict[str, Function] = self._trigger_functions()
        self._sms_policy: aws.iam.RolePolicy | None = None
        sms = self._sms_configuration() if self._needs_sms() else None
        protect = self.stage.protect if a.deletion_protection is None else a.deletion_protection

        self.user_pool = self.child(
            "user_pool",
            aws.cognito.UserPool,
            {
                "name": self.physical_name(),
                "username_attributes": a.sign_in_attributes or None,
                "username_configuration": {"case_sensitive": False},
                "auto_verified_attributes": a.verified,
                "verification_message_template": self._verification_template(),
                "mfa_configuration": a.mfa.upper(),
                "software_token_mfa_configuration": (
                    {"enabled": True} if "totp" in a.mfa_methods else None
                ),
                "sms_configuration": sms,
                "sms_authentication_message": (
                    "Your sign-in code is {####}" if "sms" in a.mfa_methods else None
                ),
                "account_recovery_setting": self._recovery(),
                "password_policy": {
                    "minimum_length": a.password.minimum_length,
                    "require_lowercase": a.password.require_lowercase,
                    "require_uppercase": a.password.require_uppercase,
                    "require_numbers": a.password.require_numbers,
                    "require_symbols": a.password.require_symbols,
                    "temporary_password_validity_days": a.password.temporary_password_days,
                },
                "schemas": self._schemas() or None,
                "lambda_config": {trigger: function.arn for trigger, function in self.triggers.items()} or None,
                "admin_create_user_config": {"allow_admin_create_user_only": not a.self_sign_up},
                "email_configuration": self._email(),
                "deletion_protection": "ACTIVE" if protect else "INACTIVE",
                # A changed email or phone counts only once verified; until then the old one signs in.
                "user_attribute_update_settings": {
                    "attributes_require_verification_before_updates": a.verified,
                },
            },
            opts=pulumi.ResourceOptions(depends_on=[self._sms_policy] if self._sms_policy else None),
        )
        self.id: pulumi.Output[str] = self.user_pool.id
        self.arn: pulumi.Output[str] = self.user_pool.arn
        self.issuer: pulumi.Output[str] = self.id.apply(issuer_url)
        from components.aws.function import allow_invoke

        for trigger, function in self.triggers.items():
            # Cognito invokes the trigger as itself, for this pool only.
            allow_invoke(self, function, "cognito-idp.amazonaws.com", self.arn, key=trigger)
        self.register_outputs({"id": self.id, "arn": self.arn, "issuer": self.issuer})

    # -- clients and authorizers -------------------------------------------------------------
    def add_client(
        self, name: str, args: CognitoUserPoolClientArgs | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> CognitoUserPoolClient:
        """An app client of this pool, e.g. ``pool.add_client("Web")``; see the module doc."""
        if not COMPONENT_NAME.match(name) or len(self.component_name + name) > 64:
            raise self.fail(
                f"client name {name!r} must be letters and digits, starting with a letter, and "
                f"at most {64 - len(self.component_name)} long with this pool's name"
            )
        if name in self.clients:
            raise self.fail(f"already has a client named {name!r}; give each client its own name")
        client = CognitoUserPoolClient(
            name, self, args, opts=pulumi.ResourceOptions(parent=self), **kwargs
        )
        self.clients[name] = client
        return client

    def jwt(self, client: CognitoUserPoolClient, scopes: Sequence[str] = ()) -> dict[str, Any]:
        """``{"jwt": {...}}`` for an API route: this pool's issuer, the client's id as audience."""
        if not isinstance(client, CognitoUserPoolClient) or client.pool is not self:
            raise self.fail(f"{client!r} is not a client of this pool; use pool.add_client(...)")
        spec: dict[str, Any] = {"issuer": self.issuer, "audiences": [client.id]}
        if scopes:
            spec["scopes"] = list(scopes)
        return {"jwt": spec}

    # -- building blocks ---------------------------------------------------------------------
    def _trigger_functions(self) -> dict[str, Function]:
        from components.aws.function import resolve_function

        functions: dict[str, Function] = {}
        for trigger, spec in self.args.triggers.items():
            functions[trigger] = resolve_function(self, trigger, spec)
        return functions

    def _needs_sms(self) -> bool:
        a = self.args
        return (
            "phone_number" in a.verified
            or "sms" in a.mfa_methods
            or "phone" in (a.recovery or "")
            or a.sign_in == "phone"
        )

    def _sms_configuration(self) -> dict[str, Any]:
        external_id = stable_hash(f"{self.app.name}/{self.stage.name}/{self.component_name}/sms", 32)
        role = self.child(
            "sms_role",
            aws.iam.Role,
            {
                "name": self.physical_name("iam.role", suffix="-sms"),
                "assume_role_policy": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "cognito-idp.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
                            }
                        ],
                    },
                    sort_keys=True,
                ),
            },
        )
        # SMS to a phone number has no ARN to name, so "*" is the narrowest resource SNS offers;
        # the role can do nothing else. Cognito checks the role when the pool is created.
        self._sms_policy = self.child(
            "sms_role_policy",
            aws.iam.RolePolicy,
            {
                "role": role.id,
                "policy": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}],
                    },
                    sort_keys=True,
                ),
            },
        )
        self.sms_role = role
        return {"external_id": external_id, "sns_caller_arn": role.arn, "sns_region": self.stage.region}

    def _verification_template(self) -> dict[str, Any] | None:
        message = self.args.verification
        if message is None:
            return None
        spec = {
            "default_email_option": "CONFIRM_WITH_CODE",
            "email_subject": message.email_subject,
            "email_message": message.email_message,
            "sms_message": message.sms_message,
        }
        return {k: v for k, v in spec.items() if v is not None}

    def _recovery(self) -> dict[str, Any]:
        a = self.args
        recovery = a.recovery or ("phone" if a.sign_in == "phone" else "email")
        order = {
            "email": ["verified_email"],
            "phone": ["verified_phone_number"],
            "email-then-phone": ["verified_email", "verified_phone_number"],
            "phone-then-email": ["verified_phone_number", "verified_email"],
            "admin-only": ["admin_only"],
        }[recovery]
        return {
            "recovery_mechanisms": [
                {"name": mechanism, "priority": priority} for priority, mechanism in enumerate(order, start=1)
            ]
        }

    def _schemas(self) -> list[dict[str, Any]]:
        a = self.args
        schemas: list[dict[str, Any]] = [
            {"name": attribute, "attribute_data_type": "String", "required": True, "mutable": setting.mutable}
            for attribute, setting in sorted(a.required.items())
        ]
        for name, attribute in a.custom_attributes.items():
            schema: dict[str, Any] = {
                "name": name,
                "attribute_data_type": _ATTRIBUTE_TYPES[attribute.type],
                "mutable": attribute.mutable,
                "required": False,
                "developer_only_attribute": False,
            }
            if attribute.type == "string":
                schema["string_attribute_constraints"] = {
                    "min_length": str(attribute.min_length or 0),
                    "max_length": str(attribute.max_length or 2048),
                }
            if attribute.type == "number" and (attribute.min_value is not None or attribute.max_value is not None):
                schema["number_attribute_constraints"] = {
                    k: str(v) for k, v in (("min_value", attribute.min_value), ("max_value", attribute.max_value))
                    if v is not None
                }
            schemas.append(schema)
        return schemas

    def _email(self) -> dict[str, Any]:
        email = self.args.email
        if email is None:
            return {"email_sending_account": "COGNITO_DEFAULT"}
        return {
            "email_sending_account": "DEVELOPER",
            "from_email_address": email.from_address,
            "source_arn": email.ses_identity_arn,
            "reply_to_email_address": email.reply_to,
        }

    # -- Linkable ------------------------------------------------------------------------
    def link_properties(self) -> dict[str, pulumi.Input[Any]]:
        return {"id": self.id}

    def link_permissions(self) -> Sequence[Permission]:
        return [Permission(LINK_ACTIONS, [self.arn])]




def issuer_url(pool_id: str) -> str:
    """The JWT issuer of a pool: its id starts with its region (``eu-west-1_AbC123``)."""
    region = pool_id.split("_", 1)[0]
    return f"https://cognito-idp.{region}.amazonaws.com/{pool_id}"

