// Real GraphQL clients against a running gateway (driven by tests/gateway/test_clients.py):
//
// 1. graphql-ws: a journeyUpdates subscription receives a conversation recorded meanwhile;
// 2. Apollo Client: a journey paged with relayStylePagination (fetchMore until the end), and
//    the contact read again through other selections, with no cache warning at all;
// 3. Apollo's PersistedQueryLink (hashed queries over GET): the first run registers the query
//    after PERSISTED_QUERY_NOT_FOUND, a second client runs it by its hash alone.
//
// Run with `node --conditions=development clients.mjs` (Apollo's development build, whose
// warnings are the ones that matter). Environment: SCV_URL (http://127.0.0.1:PORT/graphql),
// SCV_TOKEN, SCV_CONTACT_ID (a contact with SCV_CONVERSATIONS conversations), SCV_PHONE (its
// phone). Prints one JSON summary line; exits 1 with the reason on any failure.
import { createHash, randomUUID } from "node:crypto";
import WebSocket from "ws";
import { createClient } from "graphql-ws";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { loadDevMessages, loadErrorMessages } from "@apollo/client/dev";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import { relayStylePagination } from "@apollo/client/utilities";

const { SCV_URL: url, SCV_TOKEN: token, SCV_CONTACT_ID: contactId, SCV_PHONE: phone } =
  process.env;
const conversations = Number(process.env.SCV_CONVERSATIONS);
const authorization = `Bearer ${token}`;

loadDevMessages();
loadErrorMessages();
const warnings = [];
for (const level of ["warn", "error"]) {
  const original = console[level];
  console[level] = (...args) => {
    warnings.push(args.map(String).join(" "));
    original(...args);
  };
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function post(query, variables) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: authorization },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  check(response.ok && !body.errors, `POST failed: ${JSON.stringify(body)}`);
  return body.data;
}

// --- 1. graphql-ws -----------------------------------------------------------------------

const RECORD = `mutation Record($input: InteractionInput!) {
  recordInteraction(input: $input) { conversation { id } }
}`;

async function subscription() {
  const ws = createClient({
    url: url.replace(/^http/, "ws"),
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: authorization },
    retryAttempts: 0,
  });
  const recorded = [];
  try {
    const received = new Promise((resolve, reject) => {
      ws.subscribe(
        {
          query: `subscription Updates($id: ID!) { journeyUpdates(contactId: $id) { id channel } }`,
          variables: { id: contactId },
        },
        { next: (message) => resolve(message), error: reject, complete: () => {} },
      );
    });
    // the change stream opens on the server after subscribe: record until one arrives
    let message = null;
    for (let attempt = 0; attempt < 40 && message === null; attempt++) {
      const id = `ws-${randomUUID()}`;
      recorded.push(id);
      await post(RECORD, {
        input: {
          conversationId: id,
          channel: "SMS",
          startedAt: new Date().toISOString(),
          identifiers: [{ type: "PHONE", value: phone }],
        },
      });
      message = await Promise.race([received, sleep(250).then(() => null)]);
    }
    check(message !== null, "no journeyUpdates message arrived");
    check(!message.errors, `subscription errors: ${JSON.stringify(message.errors)}`);
    const update = message.data.journeyUpdates;
    check(recorded.includes(update.id) && update.channel === "SMS", JSON.stringify(update));
    return { received: update.id, recorded: recorded.length };
  } finally {
    await ws.dispose();
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --- 2. Apollo Client: a paged journey ----------------------------------------------------

const JOURNEY = gql`
  query JourneyPage($id: ID!, $after: String) {
    contact(id: $id) {
      id
      identifiers { id type value }
      journey {
        id
        conversationCount
        conversations(first: 2, after: $after) {
          edges { cursor node { id channel } }
          pageInfo { hasNextPage endCursor hasPreviousPage startCursor }
        }
      }
    }
  }
`;
const SUMMARY = gql`
  query JourneySummary($id: ID!) {
    contact(id: $id) {
      id
      identifiers { id claimedAt }
      journey { id channels contactIds }
    }
  }
`;

function apollo(link) {
  return new ApolloClient({
    link,
    cache: new InMemoryCache({
      typePolicies: {
        Journey: { fields: { conversations: relayStylePagination(["since", "until", "channels"]) } },
      },
    }),
  });
}

async function pagedJourney() {
  const client = apollo(new HttpLink({ uri: url, headers: { Authorization: authorization } }));
  // the way an app pages: a watched query, fetchMore with the endCursor until the end
  const observable = client.watchQuery({ query: JOURNEY, variables: { id: contactId } });
  const watching = observable.subscribe({ error: () => {} });
  let result = await client.query({ query: JOURNEY, variables: { id: contactId } });
  let pages = 1;
  try {
    while (result.data.contact.journey.conversations.pageInfo.hasNextPage) {
      const after = result.data.contact.journey.conversations.pageInfo.endCursor;
      await observable.fetchMore({ variables: { after } });
      result = await client.query({
        query: JOURNEY,
        variables: { id: contactId },
        fetchPolicy: "cache-only",
      });
      pages++;
      check(pages <= conversations, "paging does not end");
    }
  } finally {
    watching.unsubscribe();
  }
  const edges = result.data.contact.journey.conversations.edges;
  const ids = edges.map((edge) => edge.node.id);
  check(new Set(ids).size === ids.length, `duplicate edges: ${ids}`);
  check(ids.length >= conversations, `merged ${ids.length} edges, want ${conversations}`);
  // other selections of the same journey and identifiers: merged by id, not replaced
  const summary = await client.query({ query: SUMMARY, variables: { id: contactId } });
  check(summary.data.contact.journey.id === contactId, "Journey.id is the contact's id");
  const cached = client.cache.extract();
  check(`Journey:${contactId}` in cached, "the journey is normalised by its id");
  check(
    summary.data.contact.identifiers.every((identifier) => `Identifier:${identifier.id}` in cached),
    "identifiers are normalised by their ids",
  );
  return { pages, edges: ids.length };
}

// --- 3. Apollo's automatic persisted queries ----------------------------------------------

async function persistedQueries() {
  const seen = [];
  const recordingFetch = async (input, init) => {
    const request = new Request(input, init);
    const target = new URL(request.url);
    const body = request.method === "POST" ? JSON.parse(await request.clone().text()) : null;
    const hasQuery = body ? "query" in body : target.searchParams.has("query");
    const response = await fetch(request);
    const answer = await response.clone().json();
    const code = answer.errors?.[0]?.extensions?.code ?? "ok";
    seen.push(`${request.method} ${hasQuery ? "query" : "hash"} ${code}`);
    return response;
  };
  const sha256 = (query) => createHash("sha256").update(query).digest("hex");
  const query = gql`
    query PersistedJourney($id: ID!) {
      journey(contactId: $id) { id conversationCount }
    }
  `;
  const run = async () => {
    const link = new PersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(
      new HttpLink({ uri: url, headers: { Authorization: authorization }, fetch: recordingFetch }),
    );
    const result = await apollo(link).query({ query, variables: { id: contactId } });
    check(result.data.journey.id === contactId, JSON.stringify(result));
  };
  await run();
  await run(); // a new client: the gateway already knows the hash
  // not found by its hash: Apollo sends the query with the hash (a POST), then the hash suffices
  const expected = ["GET hash PERSISTED_QUERY_NOT_FOUND", "POST query ok", "GET hash ok"];
  check(JSON.stringify(seen) === JSON.stringify(expected), `APQ requests: ${seen}`);
  return seen;
}

try {
  const summary = {
    journey: await pagedJourney(),
    persistedQueries: await persistedQueries(),
    subscription: await subscription(),  // last: it records conversations
  };
  check(warnings.length === 0, `client warnings: ${warnings.join(" | ")}`);
  console.log(JSON.stringify({ ok: true, ...summary, warnings }));
  process.exit(0);
} catch (error) {
  console.log(JSON.stringify({ ok: false, error: String(error?.stack ?? error), warnings }));
  process.exit(1);
}
