"""Seed 001: a persona table, an HTTP API, a FIFO task topic feeding a filtered queue, a web frontend.

    infra plan --program examples/001-persona --stage dev
"""

import pulumi

from components import ApiGatewayV2, Dynamo, Nextjs, Queue, SnsTopic, declare_secrets, start_app

app = start_app()  # persona, us-east-1; prod retains and protects, dev and staging remove

secrets = declare_secrets(["MyApiKey"], placeholders={"MyApiKey": "placeholder"})

# -- database.ts ----------------------------------------------------------------------------
persona_table = Dynamo(
    "Persona",
    fields={"userId": "string", "personaId": "string", "personaStatus": "string"},
    primary_index={"hash_key": "personaId"},
    global_indexes={
        "UserIdIndex": {"hash_key": "userId"},
        "StatusIndex": {"hash_key": "personaStatus"},
    },
)

# -- orchestrator.ts: the FIFO topic delivers tasks marked queue=persona to a standard queue --
task_topic = SnsTopic("TaskTopic", fifo=True)
persona_queue = Queue("PersonaQueue")
task_topic.subscribe_queue("PersonaQueue", persona_queue.arn, filter={"queue": ["persona"]})

# -- web.ts -----------------------------------------------------------------------------------
# The handlers are Python (packages/functions/src/agent_runtime/api.py), harbor's runtime for them.
api_resources = [persona_table, task_topic]
api = ApiGatewayV2("BackendApi")
api.route("GET /personas", {
    "link": api_resources,
    "handler": "packages/functions/src/agent_runtime.api.get_all_user_personas_handler",
})
api.route("POST /personas", {
    "link": api_resources,
    "handler": "packages/functions/src/agent_runtime.api.request_persona_handler",
})

# The seed also copies MyApiKey into NEXT_PUBLIC_API_KEY; harbor links it instead, because a
# NEXT_PUBLIC_ variable is shipped to every browser. packages/web links to the sample app.
frontend = Nextjs("MyWeb", path="packages/web", link=[api, secrets.MyApiKey])

pulumi.export("apiUrl", api.url)
pulumi.export("taskTopicArn", task_topic.arn)
pulumi.export("personaQueueUrl", persona_queue.url)
pulumi.export("webUrl", frontend.url)
