// The control plane's per-message CPU cost, in process: what one request and its reply cost
// to encode and decode on each side, without sockets. control-rr in symphony-perf measures the
// whole round trip; this separates our JSON work from ZeroMQ's.

#include <benchmark/benchmark.h>

#include <string>

#include "symphony/controlplane/envelope.hpp"

namespace {

using symphony::controlplane::decode;
using symphony::controlplane::encode;
using symphony::controlplane::Envelope;
using symphony::controlplane::JsonObject;
using symphony::controlplane::JsonReader;
using symphony::controlplane::MessageType;

// What control-rr sends: the payload as a hex string.
std::string hex_payload(std::size_t bytes) {
  return "\"" + std::string(bytes * 2, 'a') + "\"";
}

std::string request_frame(const std::string& payload) {
  Envelope e;
  e.type = MessageType::request;
  e.id = 123456;
  e.from = "host";
  e.to = "echo/0";
  e.body = JsonObject().add("method", "echo").add_raw("payload", payload).add("deadline_ms", 1000).str();
  return encode(e);
}

void BM_EncodeRequest(benchmark::State& state) {
  const std::string payload = hex_payload(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(request_frame(payload));
}
BENCHMARK(BM_EncodeRequest)->Arg(64)->Arg(4096);

void BM_DecodeEnvelope(benchmark::State& state) {
  const std::string frame = request_frame(hex_payload(static_cast<std::size_t>(state.range(0))));
  for (auto _ : state) benchmark::DoNotOptimize(decode(frame));
}
BENCHMARK(BM_DecodeEnvelope)->Arg(64)->Arg(4096);

// What an extension does with a request: the envelope, then the method and the payload.
void BM_DecodeRequestFields(benchmark::State& state) {
  const std::string frame = request_frame(hex_payload(static_cast<std::size_t>(state.range(0))));
  for (auto _ : state) {
    auto e = decode(frame);
    auto body = JsonReader::parse(e->body);
    benchmark::DoNotOptimize(body->string("method"));
    benchmark::DoNotOptimize(body->raw("payload"));
  }
}
BENCHMARK(BM_DecodeRequestFields)->Arg(64)->Arg(4096);

void BM_JsonReaderParse(benchmark::State& state) {
  const std::string body =
      JsonObject().add("method", "echo").add_raw("payload", hex_payload(64)).str();
  for (auto _ : state) benchmark::DoNotOptimize(JsonReader::parse(body));
}
BENCHMARK(BM_JsonReaderParse);

}  // namespace
