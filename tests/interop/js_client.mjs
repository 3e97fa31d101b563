// Drives a gateway with the official @a2a-js/sdk 1.3.0 client and prints one JSON object of what it
// saw. tests/interop/envs.py copies this file into the interop environment's folder (where
// node_modules/@a2a-js/sdk is) and runs it there:
//
//     node .a2a/interop/js-a2a-sdk-1.3.0/js_client.mjs BASE_URL SCENARIO
//
// Scenario `all`: `new ClientFactory().createFromUrl(BASE_URL)` (the card at
// /.well-known/agent-card.json), then send, stream, get, list and cancel, each observed apart.

import { randomUUID } from "node:crypto";
import { ClientFactory } from "@a2a-js/sdk/client";
import {
  CancelTaskRequest,
  GetTaskRequest,
  ListTasksRequest,
  SendMessageRequest,
  TaskState,
  taskStateToJSON,
} from "@a2a-js/sdk";

const [baseUrl, scenario] = process.argv.slice(2);

function errorOf(err) {
  return { error: err?.constructor?.name ?? typeof err, message: String(err?.message ?? err) };
}

// Requests are built with each message's fromJSON, as from wire JSON, so every field has its default
// (a bare object leaves e.g. ListTasksRequest.status undefined, which toJSON sends as "UNRECOGNIZED").
function request(text, { echo, returnImmediately } = {}) {
  const message = { messageId: randomUUID(), role: "ROLE_USER", parts: [{ text }] };
  if (echo) message.metadata = { echo };
  const body = { message };
  if (returnImmediately) body.configuration = { returnImmediately: true };
  return SendMessageRequest.fromJSON(body);
}

function stateOf(task) {
  return taskStateToJSON(task?.status?.state ?? TaskState.TASK_STATE_UNSPECIFIED);
}

function artifactText(task) {
  return (task.artifacts ?? [])
    .flatMap((artifact) => artifact.parts)
    .map((part) => (part.content?.$case === "text" ? part.content.value : ""))
    .join("");
}

function kindOf(event) {
  const kind = event.payload?.$case ?? "none";
  if (kind === "task") return `task:${stateOf(event.payload.value)}`;
  if (kind === "statusUpdate") return `statusUpdate:${stateOf(event.payload.value)}`;
  return kind;
}

function isTask(result) {
  return result && typeof result === "object" && "status" in result && !("messageId" in result);
}

async function observe(operation) {
  try {
    return await operation();
  } catch (err) {
    return errorOf(err);
  }
}

async function all(client) {
  const out = { protocolVersion: client.protocolVersion, transport: client.transport?.protocolName };
  let sent;
  out.send = await observe(async () => {
    const result = await client.sendMessage(request("hello"));
    if (!isTask(result)) return { kind: "message" };
    sent = result;
    return { kind: "task", state: stateOf(result), artifactText: artifactText(result) };
  });
  out.stream = await observe(async () => {
    const kinds = [];
    let text = "";
    for await (const event of client.sendMessageStream(request("streamed", { echo: { chunks: 3 } }))) {
      kinds.push(kindOf(event));
      if (event.payload?.$case === "artifactUpdate") {
        text += artifactText({ artifacts: [event.payload.value.artifact] });
      }
    }
    return { kinds, artifactText: text };
  });
  out.get = await observe(async () => {
    if (!sent) throw new Error("send failed: no task to get");
    const task = await client.getTask(GetTaskRequest.fromJSON({ id: sent.id }));
    return { sameId: task.id === sent.id, state: stateOf(task), artifactText: artifactText(task) };
  });
  out.list = await observe(async () => {
    if (!sent) throw new Error("send failed: no task to list");
    const listed = await client.listTasks(ListTasksRequest.fromJSON({ contextId: sent.contextId }));
    return {
      ids: listed.tasks.map((task) => (task.id === sent.id ? "sent" : task.id)),
      states: listed.tasks.map(stateOf),
    };
  });
  out.cancel = await observe(async () => {
    const task = await client.sendMessage(
      request("slow", { echo: { chunks: 2, delay: 30 }, returnImmediately: true }),
    );
    const canceled = await client.cancelTask(CancelTaskRequest.fromJSON({ id: task.id }));
    const after = await client.getTask(GetTaskRequest.fromJSON({ id: task.id }));
    return {
      sentState: stateOf(task),
      sameId: canceled.id === task.id,
      state: stateOf(canceled),
      stateAfterGet: stateOf(after),
    };
  });
  return out;
}

async function main() {
  const out = { scenario };
  try {
    if (scenario !== "all") throw new Error(`unknown scenario ${scenario}: all`);
    const client = await new ClientFactory().createFromUrl(baseUrl);
    Object.assign(out, await all(client));
  } catch (err) {
    out.fatal = errorOf(err);
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

await main();
