"""CognitoUserPool: sign-in, verification, MFA, recovery, passwords, attributes, triggers, clients, JWT auth."""

from __future__ import annotations

import json

import pulumi
import pytest

from components import ApiGatewayV2, CognitoUserPool, ComponentError, Function
from components.core.linking import link_data, link_statements

POOL = "aws:cognito/userPool:UserPool"
CLIENT = "aws:cognito/userPoolClient:UserPoolClient"
PERMISSION = "aws:lambda/permission:Permission"
AUTHORIZER = "aws:apigatewayv2/authorizer:Authorizer"
ROUTE = "aws:apigatewayv2/route:Route"
HANDLER = "app/functions/items.create"


def test_defaults_sign_in_by_email_verified_with_a_strong_password_and_email_recovery(build):
    pool = build(lambda: CognitoUserPool("Users")).one(POOL).inputs

    assert pool["name"] == "harbor-dev-Users"
    assert pool["usernameAttributes"] == ["email"]
    assert pool["usernameConfiguration"] == {"caseSensitive": False}
    assert pool["autoVerifiedAttributes"] == ["email"]
    assert pool["userAttributeUpdateSettings"] == {"attributesRequireVerificationBeforeUpdates": ["email"]}
    assert pool["mfaConfiguration"] == "OFF"
    assert "softwareTokenMfaConfiguration" not in pool and "smsConfiguration" not in pool
    assert pool["passwordPolicy"] == {
        "minimumLength": 12, "requireLowercase": True, "requireUppercase": True, "requireNumbers": True,
        "requireSymbols": True, "temporaryPasswordValidityDays": 7,
    }
    assert pool["accountRecoverySetting"] == {"recoveryMechanisms": [{"name": "verified_email", "priority": 1}]}
    assert pool["adminCreateUserConfig"] == {"allowAdminCreateUserOnly": False}
    assert pool["emailConfiguration"] == {"emailSendingAccount": "COGNITO_DEFAULT"}
    assert pool["deletionProtection"] == "INACTIVE"


@pytest.mark.parametrize(("stage", "kept"), [("dev", False), ("staging", False), ("prod", True)])
def test_the_pool_is_kept_and_protected_on_stages_that_keep_data(build, stage, kept):
    plan = build(lambda: CognitoUserPool("Users").add_client("Web"), stage=stage)

    pool = plan.one(POOL)
    assert (pool.protect, pool.retain_on_delete) == (kept, kept)
    assert pool.inputs["deletionProtection"] == ("ACTIVE" if kept else "INACTIVE")
    # A client holds no data: it can be deleted with the stage.
    assert not plan.one(CLIENT).retain_on_delete


def test_deletion_protection_can_be_chosen_per_pool(build):
    pool = build(lambda: CognitoUserPool("Users", deletion_protection=True)).one(POOL)
    assert pool.inputs["deletionProtection"] == "ACTIVE"


def test_phone_sign_in_sends_sms_through_a_role_only_this_pool_can_assume(build):
    plan = build(lambda: CognitoUserPool("Users", sign_in="phone"))

    pool = plan.one(POOL).inputs
    assert pool["usernameAttributes"] == ["phone_number"]
    assert pool["autoVerifiedAttributes"] == ["phone_number"]
    assert pool["accountRecoverySetting"]["recoveryMechanisms"] == [{"name": "verified_phone_number", "priority": 1}]
    role = plan.one("aws:iam/role:Role")
    assume = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert assume["Principal"] == {"Service": "cognito-idp.amazonaws.com"}
    external_id = assume["Condition"]["StringEquals"]["sts:ExternalId"]
    assert pool["smsConfiguration"] == {
        "externalId": external_id,
        "snsCallerArn": "arn:aws:iam::123456789012:role/harbor-dev-Users-sms",
        "snsRegion": "us-east-1",
    }
    policy = plan.one("aws:iam/rolePolicy:RolePolicy")
    assert json.loads(policy.inputs["policy"])["Statement"] == [
        {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}
    ]
    # Cognito checks the role can send when it creates the pool.
    assert policy.urn in plan.one(POOL).dependencies


def test_email_or_phone_verifies_both_and_recovers_in_the_order_asked(build):
    pool = build(
        lambda: CognitoUserPool("Users", sign_in="email-or-phone", recovery="phone-then-email")
    ).one(POOL).inputs
    assert pool["usernameAttributes"] == ["email", "phone_number"]
    assert pool["autoVerifiedAttributes"] == ["email", "phone_number"]
    assert pool["accountRecoverySetting"]["recoveryMechanisms"] == [
        {"name": "verified_phone_number", "priority": 1},
        {"name": "verified_email", "priority": 2},
    ]


def test_optional_mfa_with_an_authenticator_app_and_sms(build):
    plan = build(lambda: CognitoUserPool("Users", mfa="optional", mfa_methods=["totp", "sms"]))
    pool = plan.one(POOL).inputs
    assert pool["mfaConfiguration"] == "OPTIONAL"
    assert pool["softwareTokenMfaConfiguration"] == {"enabled": True}
    assert "{####}" in pool["smsAuthenticationMessage"]
    assert "smsConfiguration" in pool


def test_required_mfa_with_totp_only_needs_no_sms_role(build):
    plan = build(lambda: CognitoUserPool("Users", mfa="on", mfa_methods=["totp"]))
    assert plan.one(POOL).inputs["mfaConfiguration"] == "ON"
    assert plan.of_type("aws:iam/role:Role") == []


def test_password_policy_verification_message_and_self_sign_up(build):
    pool = build(
        lambda: CognitoUserPool(
            "Users",
            password={"minimum_length": 8, "require_symbols": False, "temporary_password_days": 3},
            verification={"email_subject": "Your code", "email_message": "Code: {####}"},
            self_sign_up=False,
        )
    ).one(POOL).inputs
    assert pool["passwordPolicy"]["minimumLength"] == 8
    assert pool["passwordPolicy"]["requireSymbols"] is False
    assert pool["passwordPolicy"]["temporaryPasswordValidityDays"] == 3
    assert pool["verificationMessageTemplate"] == {
        "defaultEmailOption": "CONFIRM_WITH_CODE", "emailSubject": "Your code", "emailMessage": "Code: {####}",
    }
    assert pool["adminCreateUserConfig"] == {"allowAdminCreateUserOnly": True}


def test_custom_and_required_attributes_become_the_schema(build):
    pool = build(
        lambda: CognitoUserPool(
            "Users",
            required_attributes=["name"],
            custom_attributes={
                "plan": {"type": "string", "max_length": 32},
                "seats": {"type": "number", "min_value": 1, "max_value": 500, "mutable": False},
                "beta": {"type": "boolean"},
            },
        )
    ).one(POOL).inputs
    schemas = {s["name"]: s for s in pool["schemas"]}
    assert schemas["name"] == {"name": "name", "attributeDataType": "String", "required": True, "mutable": True}
    assert schemas["plan"]["attributeDataType"] == "String"
    assert schemas["plan"]["stringAttributeConstraints"] == {"minLength": "0", "maxLength": "32"}
    assert schemas["seats"]["numberAttributeConstraints"] == {"minValue": "1", "maxValue": "500"}
    assert schemas["seats"]["mutable"] is False
    assert schemas["beta"]["attributeDataType"] == "Boolean"
    assert all(s["required"] is False for n, s in schemas.items() if n != "name")


def test_a_required_attribute_can_be_fixed_after_sign_up_as_seed_003_asks(build):
    pool = build(lambda: CognitoUserPool("Users", required_attributes={"email": {"mutable": False}})).one(POOL)
    assert pool.inputs["schemas"] == [
        {"name": "email", "attributeDataType": "String", "required": True, "mutable": False}
    ]


def test_own_ses_identity_sends_the_emails(build):
    identity = "arn:aws:ses:us-east-1:123456789012:identity/kefirproducer.com"
    pool = build(
        lambda: CognitoUserPool("Users", email={"from_address": "no-reply@kefirproducer.com",
                                                "ses_identity_arn": identity})
    ).one(POOL).inputs
    assert pool["emailConfiguration"] == {
        "emailSendingAccount": "DEVELOPER", "fromEmailAddress": "no-reply@kefirproducer.com", "sourceArn": identity,
    }


def test_triggers_are_functions_cognito_may_invoke_for_this_pool_only(build):
    existing: list[Function] = []

    def body() -> None:
        existing.append(Function("PostConfirm", handler=HANDLER))
        CognitoUserPool(
            "Users",
            triggers={
                "pre_sign_up": HANDLER,
                "post_confirmation": existing[0],
                "define_auth_challenge": HANDLER,
                "create_auth_challenge": HANDLER,
                "verify_auth_challenge_response": {"handler": HANDLER, "timeout": 5},
            },
        )

    plan = build(body)

    pool = plan.one(POOL)
    config = pool.inputs["lambdaConfig"]
    arn = "arn:aws:lambda:us-east-1:123456789012:function:harbor-dev-{}"
    assert config == {
        "preSignUp": arn.format("UsersPreSignUp"),
        "postConfirmation": arn.format("PostConfirm"),
        "defineAuthChallenge": arn.format("UsersDefineAuthChallenge"),
        "createAuthChallenge": arn.format("UsersCreateAuthChallenge"),
        "verifyAuthChallengeResponse": arn.format("UsersVerifyAuthChallengeResponse"),
    }
    permissions = {p.name: p.inputs for p in plan.of_type(PERMISSION)}
    assert len(permissions) == 5
    for inputs in permissions.values():
        assert inputs["principal"] == "cognito-idp.amazonaws.com"
        assert inputs["action"] == "lambda:InvokeFunction"
        assert inputs["sourceArn"].startswith("arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_")
    assert permissions["Users-permission-post_confirmation"]["function"] == "harbor-dev-PostConfirm"
    verify = plan.one("aws:lambda/function:Function", "UsersVerifyAuthChallengeResponse-function")
    assert verify.inputs["timeout"] == 5


def test_a_public_client_has_no_secret_and_safe_token_settings(build):
    plan = build(lambda: CognitoUserPool("Users").add_client(
        "Mobile", auth_flows=["custom"], access_token_minutes=60, id_token_minutes=60, refresh_token_days=30
    ))
    client = plan.one(CLIENT).inputs
    assert client["name"] == "harbor-dev-Users-Mobile"
    assert client["userPoolId"].startswith("us-east-1_")
    assert client["generateSecret"] is False
    assert client["explicitAuthFlows"] == ["ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert (client["accessTokenValidity"], client["idTokenValidity"], client["refreshTokenValidity"]) == (60, 60, 30)
    assert client["tokenValidityUnits"] == {"accessToken": "minutes", "idToken": "minutes", "refreshToken": "days"}
    assert client["preventUserExistenceErrors"] == "ENABLED"
    assert client["enableTokenRevocation"] is True


def test_a_confidential_client_gets_a_secret_that_stays_secret_in_its_link(build):
    def body() -> None:
        server = CognitoUserPool("Users").add_client("Server", public=False, auth_flows=["admin-user-password"])
        pulumi.export("link", link_data([server]))

    plan = build(body)
    assert plan.one(CLIENT).inputs["generateSecret"] is True
    assert plan.one(CLIENT).inputs["explicitAuthFlows"] == [
        "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH",
    ]
    assert plan.outputs["link"] == "[secret]"


def test_links_give_the_ids_and_user_management_on_this_pool_only(build):
    def body() -> None:
        pool = CognitoUserPool("Users")
        web = pool.add_client("Web")
        pulumi.export("link", link_data([pool, web]))
        pulumi.export("clientId", web.id)
        pulumi.export("statements", link_statements([pool, web]))

    plan = build(body)
    pool_id = plan.outputs["link"]["Users"]["id"]
    assert pool_id.startswith("us-east-1_")
    assert plan.outputs["link"]["Users"]["type"] == "sst.aws.CognitoUserPool"
    assert plan.outputs["link"]["Web"] == {"id": plan.outputs["clientId"], "type": "sst.aws.CognitoUserPoolClient"}
    (statement,) = plan.outputs["statements"]
    assert statement["Resource"] == [f"arn:aws:cognito-idp:us-east-1:123456789012:userpool/{pool_id}"]
    assert all(action.startswith("cognito-idp:") and "*" not in action for action in statement["Action"])
    assert "cognito-idp:AdminGetUser" in statement["Action"]


@pytest.mark.parametrize("form", ["client", "pair", "jwt"])
def test_a_client_is_the_api_jwt_authorizer_with_the_pool_issuer_and_client_audience(build, form):
    def body() -> None:
        pool = CognitoUserPool("Users")
        mobile = pool.add_client("Mobile")
        auth = {"client": mobile, "pair": (pool, mobile), "jwt": pool.jwt(mobile)}[form]
        api = ApiGatewayV2("Api")
        api.route("POST /batches", HANDLER, auth=auth)
        api.route("GET /batches", HANDLER, auth=auth)
        pulumi.export("clientId", mobile.id)

    plan = build(body, region="eu-west-1")

    (authorizer,) = plan.of_type(AUTHORIZER)  # one authorizer, shared by both routes
    pool_id = plan.one(CLIENT).inputs["userPoolId"]
    assert pool_id.startswith("eu-west-1_")
    assert authorizer.inputs["jwtConfiguration"] == {
        "issuer": f"https://cognito-idp.eu-west-1.amazonaws.com/{pool_id}",
        "audiences": [plan.outputs["clientId"]],
    }
    routes = plan.of_type(ROUTE)
    assert {r.inputs["authorizationType"] for r in routes} == {"JWT"}
    assert len({r.inputs["authorizerId"] for r in routes}) == 1


def test_scopes_reach_the_route(build):
    def body() -> None:
        pool = CognitoUserPool("Users")
        ApiGatewayV2("Api").route("GET /a", HANDLER, auth=pool.jwt(pool.add_client("Web"), scopes=["openid"]))

    assert build(body).one(ROUTE).inputs["authorizationScopes"] == ["openid"]


@pytest.mark.parametrize(
    ("auth_of", "problem"),
    [
        (lambda pool, other: pool, "a user pool alone does not say which app's tokens to accept"),
        (lambda pool, other: (pool, other), "needs a client made by that pool's add_client"),
    ],
)
def test_wrong_cognito_auth_is_refused(build, auth_of, problem):
    def body() -> None:
        pool = CognitoUserPool("Users")
        other = CognitoUserPool("Others").add_client("Web")
        ApiGatewayV2("Api").route("GET /a", HANDLER, auth=auth_of(pool, other))

    with pytest.raises(ComponentError, match=problem):
        build(body)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"mfa": "optional"}, "needs at least one method"),
        ({"mfa_methods": ["totp"]}, "mfa_methods need mfa='optional' or 'on'"),
        ({"mfa": "on", "mfa_methods": ["totp", "totp"]}, "lists a method twice"),
        ({"sign_in": "mail"}, "sign_in"),
        ({"password": {"minimum_length": 5}}, "minimum_length"),
        ({"custom_attributes": {"custom:plan": {}}}, "without 'custom:'"),
        ({"custom_attributes": {"a_very_long_attribute_name": {}}}, "must be 1-20 letters"),
        ({"custom_attributes": {"plan": {"type": "number", "max_length": 3}}}, "apply to string attributes"),
        ({"custom_attributes": {"n": {"type": "number", "min_value": 5, "max_value": 1}}}, "min_value 5 is above"),
        ({"required_attributes": ["plan"]}, "custom attributes cannot be required"),
        ({"required_attributes": {"plan": {}}}, "custom attributes cannot be required"),
        ({"required_attributes": {"email": {"mutable": "maybe"}}}, "mutable"),
        ({"triggers": {"before_sign_up": HANDLER}}, "unknown trigger 'before_sign_up'"),
        ({"triggers": {"define_auth_challenge": HANDLER}}, "needs all three challenge triggers"),
        ({"verification": {"email_message": "no code here"}}, "must contain {####}"),
        ({"email": {"from_address": "a@b.c", "ses_identity_arn": "not-an-arn"}}, "ses_identity_arn"),
        ({"sign_in": "username", "recovery": "phone"}, None),
        ({"colour": "blue"}, "colour is not an argument"),
    ],
)
def test_bad_pool_arguments_are_refused_before_anything_is_created(build, args, problem):
    if problem is None:  # a valid combination: standard attributes include phone_number
        build(lambda: CognitoUserPool("Users", **args))
        return
    with pytest.raises(ComponentError, match=problem) as error:
        CognitoUserPool.parse_args("CognitoUserPool 'Users'", args, {})  # before any resource exists
    assert str(error.value).startswith("CognitoUserPool 'Users': ")


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"access_token_minutes": 2}, "access_token_minutes"),
        ({"id_token_minutes": 2000}, "id_token_minutes"),
        ({"refresh_token_days": 4000}, "refresh_token_days"),
        ({"auth_flows": ["password"]}, "auth_flows"),
        ({"auth_flows": ["admin-user-password"]}, "a public client cannot use it"),
    ],
)
def test_bad_client_arguments_are_refused(build, args, problem):
    with pytest.raises(ComponentError, match=problem):
        build(lambda: CognitoUserPool("Users").add_client("Web", **args))


def test_two_pools_may_each_have_a_client_of_the_same_name(build):
    def body() -> None:
        CognitoUserPool("Users").add_client("Web")
        CognitoUserPool("Admins").add_client("Web")

    names = sorted(c.inputs["name"] for c in build(body).of_type(CLIENT))
    assert names == ["harbor-dev-Admins-Web", "harbor-dev-Users-Web"]


@pytest.mark.parametrize("name", ["web-app", "1Web", "W" * 60])
def test_a_client_name_that_cannot_name_resources_is_refused(build, name):
    with pytest.raises(ComponentError, match="must be letters and digits"):
        build(lambda: CognitoUserPool("Users").add_client(name))


def test_two_clients_with_one_name_are_refused(build):
    def body() -> None:
        pool = CognitoUserPool("Users")
        pool.add_client("Web")
        pool.add_client("Web")

    with pytest.raises(ComponentError, match="already has a client named 'Web'"):
        build(body)
