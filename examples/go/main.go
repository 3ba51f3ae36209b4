// Command example produces one click to recstream and waits for the list it triggers.
//
// The click and the list are validated against the contract bundle that `recstream schema
// export DIR` writes (github.com/santhosh-tekuri/jsonschema, Go's RE2 regexp). Lists are
// applied with the contract's rule: per user, only a list whose seq is higher than the last
// applied one.
//
// Environment: KAFKA_BOOTSTRAP (127.0.0.1:9092), BUNDLE_DIR (the exported bundle), TOPIC_CLICK
// (events.click), TOPIC_RECS (recs.updated), USER_ID, ITEM_ID, TIMEOUT_MS (60000). Prints one
// JSON line {"click": ..., "list": ..., "ok": true}; exits 1 on failure.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/twmb/franz-go/pkg/kgo"
)

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return fallback
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "example: "+format+"\n", args...)
	os.Exit(1)
}

func compile(bundle, file string) *jsonschema.Schema {
	s, err := jsonschema.NewCompiler().Compile(filepath.Join(bundle, "json", file))
	if err != nil {
		fail("schema %s: %v", file, err)
	}
	return s
}

func validate(s *jsonschema.Schema, doc []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

type list struct {
	UserID         string  `json:"user_id"`
	TriggerEventID string  `json:"trigger_event_id"`
	Seq            *uint64 `json:"seq"`
}

func main() {
	bundle := env("BUNDLE_DIR", "")
	clickSchema := compile(bundle, "click.v1.json")
	listSchema := compile(bundle, "recs_updated.v1.json")
	timeoutMs, _ := strconv.Atoi(env("TIMEOUT_MS", "60000"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(timeoutMs)*time.Millisecond)
	defer cancel()

	id := make([]byte, 16)
	_, _ = rand.Read(id)
	userID := env("USER_ID", "go-user")
	click := map[string]any{
		"type": "click", "event_id": hex.EncodeToString(id), "user_id": userID,
		"item_id": env("ITEM_ID", "movie-858"), "ts": time.Now().UnixMilli(), "schema_version": 1,
	}
	clickJSON, _ := json.Marshal(click)
	if err := validate(clickSchema, clickJSON); err != nil {
		fail("click invalid: %v", err)
	}

	// Reads recs.updated from the lists published from now on (by record timestamp; no
	// consumer group), then sends the click.
	client, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(env("KAFKA_BOOTSTRAP", "127.0.0.1:9092"), ",")...),
		kgo.ConsumeTopics(env("TOPIC_RECS", "recs.updated")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(time.Now().UnixMilli())),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// franz-go's default partitioner hashes keys with murmur2, like the Java client.
	)
	if err != nil {
		fail("client: %v", err)
	}
	defer client.Close()
	rec := &kgo.Record{Topic: env("TOPIC_CLICK", "events.click"), Key: []byte(userID), Value: clickJSON}
	if err := client.ProduceSync(ctx, rec).FirstErr(); err != nil {
		fail("produce: %v", err)
	}

	lastSeq := map[string]uint64{} // the contract's rule: apply a user's list only if seq is higher
	for {
		fetches := client.PollFetches(ctx)
		if ctx.Err() != nil {
			fail("no list for click %s within %d ms", click["event_id"], timeoutMs)
		}
		for _, e := range fetches.Errors() {
			fail("fetch %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		var found []byte
		fetches.EachRecord(func(r *kgo.Record) {
			if err := validate(listSchema, r.Value); err != nil {
				fail("list invalid: %v", err)
			}
			var l list
			if err := json.Unmarshal(r.Value, &l); err != nil || l.Seq == nil {
				fail("list without seq: %s", r.Value)
			}
			if seen, ok := lastSeq[l.UserID]; ok && *l.Seq <= seen {
				return // duplicate or stale: drop
			}
			lastSeq[l.UserID] = *l.Seq
			if l.TriggerEventID == click["event_id"] {
				found = r.Value
			}
		})
		if found != nil {
			out, _ := json.Marshal(map[string]any{"click": click, "list": json.RawMessage(found), "ok": true})
			fmt.Println(string(out))
			return
		}
	}
}
