// Evaluates a batch of AWS requests with @cloud-copilot/iam-simulate (AWS's policy evaluation
// logic: explicit deny wins, same-account identity-or-resource policy, service principals,
// KMS key policies that must allow or delegate to the account, every condition operator).
//
// stdin: a JSON list of {principal, action, resource, account, context, identityPolicies,
// resourcePolicy}; stdout: a JSON list of {result, errors, identity, resourcePolicy, ignored},
// one per request, in order. `result` is Allowed, ImplicitlyDenied or ExplicitlyDenied; `errors`
// lists what the simulator refused as input (an unknown action, a resource ARN of the wrong
// type); `ignored` the context keys it dropped because it does not know them for the action.
import { createInterface } from 'node:readline'
import { runSimulation } from '@cloud-copilot/iam-simulate'

// With --serve, the same answers one line at a time, for as long as stdin stays open: one
// request per line in, its answer as one line out (the local runtime's enforcement keeps one
// such process for the life of the local system, so a decision costs no node start).
const serving = process.argv.includes('--serve')

async function * batch () {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  yield * JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

async function * lines () {
  for await (const line of createInterface({ input: process.stdin })) yield JSON.parse(line)
}

const requests = serving ? lines() : batch()
const answers = serving
  ? { push: (answer) => process.stdout.write(JSON.stringify(answer) + '\n') }
  : []
for await (const request of requests) {
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
    id: request.id,
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
if (!serving) process.stdout.write(JSON.stringify(answers))
