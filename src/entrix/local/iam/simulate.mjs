// Evaluates a batch of AWS requests with @cloud-copilot/iam-simulate (AWS's policy evaluation
// logic: explicit deny wins, same-account identity-or-resource policy, service principals,
// KMS key policies that must allow or delegate to the account, every condition operator).
//
// stdin: a JSON list of {principal, action, resource, account, context, identityPolicies,
// resourcePolicy}; stdout: a JSON list of {result, errors, identity, resourcePolicy, ignored},
// one per request, in order. `result` is Allowed, ImplicitlyDenied or ExplicitlyDenied; `errors`
// lists what the simulator refused as input (an unknown action, a resource ARN of the wrong
// type); `ignored` the context keys it dropped because it does not know them for the action.
import { runSimulation } from '@cloud-copilot/iam-simulate'

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const requests = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const answers = []
for (const request of requests) {
  const response = await runSimulation(
    {
      request: {
        principal: request.principal,
        action: request.action,
        resource: { resource: request.resource, accountId: request.account },
        contextVariables: request.context
      },
      identityPolicies: request.identityPolicies.map((policy, index) => ({
        name: `identity-${index}`,
        policy
      })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: request.resourcePolicy ?? undefined
    },
    {}
  )
  const analysis = response.result?.analysis
  answers.push({
    result: response.overallResult ?? null,
    errors: response.errors ?? null,
    identity: analysis?.identityAnalysis?.result ?? null,
    resourcePolicy: analysis?.resourceAnalysis?.result ?? null,
    ignored: [
      ...new Set(
        [response.result, ...(response.results ?? [])].flatMap((r) => r?.ignoredContextKeys ?? [])
      )
    ]
  })
}
process.stdout.write(JSON.stringify(answers))
