// Produce one click to recstream and wait for the list it triggers.
//
// The click and the list are validated against the contract bundle that
// `recstream schema export DIR` writes (Ajv 8, draft 2020-12). Lists are applied with the
// contract's rule: per user, only a list whose `seq` is higher than the last applied one.
//
// Environment: KAFKA_BOOTSTRAP (127.0.0.1:9092), BUNDLE_DIR (the exported bundle),
// TOPIC_CLICK (events.click), TOPIC_RECS (recs.updated), USER_ID, ITEM_ID, TIMEOUT_MS (60000).
// Prints one JSON line: {"click": ..., "list": ..., "ok": true}; exits 1 on failure.
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import { Kafka, Partitioners, logLevel } from "kafkajs";

const env = (name, fallback) => process.env[name] ?? fallback;
const bundle = env("BUNDLE_DIR");
const schema = (file) => JSON.parse(readFileSync(join(bundle, "json", file), "utf8"));
const ajv = new Ajv2020();
const validClick = ajv.compile(schema("click.v1.json"));
const validList = ajv.compile(schema("recs_updated.v1.json"));

const userId = env("USER_ID", "node-user");
const click = {
  type: "click",
  event_id: randomUUID(),
  user_id: userId,
  item_id: env("ITEM_ID", "movie-858"),
  ts: Date.now(),
  schema_version: 1,
};
if (!validClick(click)) throw new Error(`click invalid: ${ajv.errorsText(validClick.errors)}`);

const kafka = new Kafka({
  clientId: "recstream-example-node",
  brokers: env("KAFKA_BOOTSTRAP", "127.0.0.1:9092").split(","),
  logLevel: logLevel.WARN,
});
// kafkajs 2's default partitioner is Java-compatible (murmur2 of the key), as the contract asks.
const producer = kafka.producer({ idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
const consumer = kafka.consumer({ groupId: `example-node-${randomUUID()}` });
const lastSeq = new Map(); // the contract's rule: apply a user's list only if its seq is higher

const result = await new Promise(async (resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("no list within the timeout")), Number(env("TIMEOUT_MS", "60000")));
  await consumer.connect();
  await consumer.subscribe({ topic: env("TOPIC_RECS", "recs.updated"), fromBeginning: false });
  let sent = false;
  consumer.on(consumer.events.GROUP_JOIN, async () => {
    if (sent) return;
    sent = true;
    await producer.connect();
    // Keyed by user_id: all of a user's events land on one partition, where one worker owns them.
    await producer.send({
      topic: env("TOPIC_CLICK", "events.click"),
      acks: -1,
      messages: [{ key: userId, value: JSON.stringify(click) }],
    });
  });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const list = JSON.parse(message.value.toString("utf8"));
      if (!validList(list)) return reject(new Error(`list invalid: ${ajv.errorsText(validList.errors)}`));
      const seen = lastSeq.get(list.user_id);
      if (seen !== undefined && !(list.seq > seen)) return; // duplicate or stale: drop
      lastSeq.set(list.user_id, list.seq);
      if (list.trigger_event_id === click.event_id) {
        clearTimeout(timer);
        resolve(list);
      }
    },
  });
});
await consumer.disconnect();
await producer.disconnect();
console.log(JSON.stringify({ click, list: result, ok: true }));
