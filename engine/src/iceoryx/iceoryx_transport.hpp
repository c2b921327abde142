#pragma once
// The iceoryx transport of topics (iceoryx 2.0, RouDi-based). bus.cpp calls these three
// factories; everything else about iceoryx stays inside engine/src/iceoryx/ (README.md there).
//
// A topic `T` of bus `B` is the iceoryx service {"symphony", "B", "T"}: a plain iceoryx app
// subscribes to it with iox::popo::UntypedSubscriber({"symphony", "B", "T"}) and reads the raw
// payload bytes of each sample (our samples also carry a 16-byte user header, which such an app
// can ignore).

#include <memory>
#include <string_view>

#include "symphony/engine/error.hpp"
#include "symphony/engine/topic.hpp"
#include "symphony/layouts/topic.hpp"
#include "topic/backend.hpp"

namespace symphony::engine::detail {

// One per Bus that uses iceoryx. Holds this process's share of RouDi (a "lease": RouDi is
// started by a keeper process if none runs, and stopped when the last process using it exits)
// and the process's single iceoryx runtime ("symphony-rt-<pid>"; all sessions of a process
// share it). Errc::unavailable if RouDi cannot be started or reached, or if this process is a
// fork() child of a process whose runtime was already initialised.
class IceoryxSession;
Result<std::shared_ptr<IceoryxSession>> open_iceoryx_session(std::string_view bus_name);

// Errc::unsupported for a QoS iceoryx 2.0 cannot honour (history > 16, max_payload larger than
// RouDi's largest chunk, names longer than 100 characters), Errc::invalid_argument for
// nonsense, Errc::unavailable if RouDi refuses the port. `counters` (may be null) is written by
// this publisher only.
Result<std::unique_ptr<PublisherBackend>> make_iceoryx_publisher(
    std::shared_ptr<IceoryxSession> session, std::string_view bus_name, std::string_view topic,
    const TopicType& type, const TopicOptions& options, layouts::TopicCounterBlock* counters);

// As above, and depth > 256 or history > depth: Errc::unsupported. Returns once RouDi has
// processed the subscription (connected to a live publisher, or waiting for one):
// Errc::unavailable if that does not happen within 5 s.
Result<std::unique_ptr<SubscriberBackend>> make_iceoryx_subscriber(
    std::shared_ptr<IceoryxSession> session, std::string_view bus_name, std::string_view topic,
    const TopicType& type, const TopicOptions& options, const SubscriberOptions& subscriber,
    layouts::TopicCounterBlock* counters);

}  // namespace symphony::engine::detail
