#include "symphony/cli/topics.hpp"

#include <poll.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <thread>

#include "symphony/cli/text.hpp"
#include "symphony/controlplane/envelope.hpp"

namespace symphony::cli {

using controlplane::JsonObject;
using engine::Errc;
using engine::Error;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

std::uint64_t delta(std::uint64_t now, std::uint64_t before) {
  return now >= before ? now - before : 0;
}

bool readable(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

std::string participant_json(const TopicParticipant& p, bool publisher, double delivered_per_s) {
  JsonObject o;
  o.add("pid", static_cast<std::int64_t>(p.pid)).add("alive", p.alive);
  if (publisher) {
    o.add("published", p.published)
        .add("full", p.full)
        .add("flushes", p.flushes)
        .add("wakeups", p.wakeups)
        .add("priority", p.priority);
  } else {
    o.add("overflow", engine::to_string(p.overflow))
        .add("depth", static_cast<std::int64_t>(p.depth))
        .add("group", p.group)
        .add("delivered", p.delivered)
        .add("dropped", p.dropped)
        .add("overruns", p.overruns)
        .add_raw("delivered_per_s", json_number(delivered_per_s));
  }
  return o.str();
}

}  // namespace

engine::Result<std::vector<TopicReport>> survey_topics(const Bus& bus,
                                                       std::chrono::milliseconds window) {
  auto first = bus.topics();
  if (!first) return tl::unexpected(first.error());
  const auto t0 = Clock::now();
  std::vector<TopicReport> reports;
  if (window.count() <= 0) {
    for (auto& info : *first) {
      TopicReport r;
      for (const auto& s : info.subscribers) r.dropped += s.dropped;
      r.subscriber_delivered_per_s.assign(info.subscribers.size(),
                                          std::numeric_limits<double>::quiet_NaN());
      r.published_per_s = r.delivered_per_s = r.dropped_per_s =
          std::numeric_limits<double>::quiet_NaN();
      r.info = std::move(info);
      reports.push_back(std::move(r));
    }
    return reports;
  }
  std::this_thread::sleep_for(window);
  auto second = bus.topics();
  if (!second) return tl::unexpected(second.error());
  const double dt = seconds(Clock::now() - t0);
  for (auto& info : *second) {
    TopicReport r;
    r.window_s = dt;
    const TopicInfo* before = nullptr;
    for (const auto& old : *first) {
      if (old.name == info.name) before = &old;
    }
    const auto nan = std::numeric_limits<double>::quiet_NaN();
    std::uint64_t published = 0;
    std::uint64_t delivered = 0;
    std::uint64_t dropped = 0;
    bool known = before != nullptr;
    if (!info.publishers.empty()) {
      const auto& p = info.publishers[0];
      const bool same =
          before != nullptr && !before->publishers.empty() && before->publishers[0].pid == p.pid;
      published = same ? delta(p.published, before->publishers[0].published) : 0;
      known = known && same;
    }
    // Subscribers are matched by pid, in order (one process may hold several).
    std::vector<bool> used(before != nullptr ? before->subscribers.size() : 0, false);
    for (const auto& s : info.subscribers) {
      r.dropped += s.dropped;
      double rate = nan;
      if (before != nullptr) {
        for (std::size_t i = 0; i < before->subscribers.size(); ++i) {
          const auto& o = before->subscribers[i];
          if (used[i] || o.pid != s.pid || o.group != s.group) continue;
          used[i] = true;
          delivered += delta(s.delivered, o.delivered);
          dropped += delta(s.dropped, o.dropped);
          rate = static_cast<double>(delta(s.delivered, o.delivered)) / dt;
          break;
        }
      }
      r.subscriber_delivered_per_s.push_back(rate);
    }
    r.published_per_s =
        known || info.publishers.empty() ? static_cast<double>(published) / dt : nan;
    r.delivered_per_s = static_cast<double>(delivered) / dt;
    r.dropped_per_s = static_cast<double>(dropped) / dt;
    r.info = std::move(info);
    reports.push_back(std::move(r));
  }
  return reports;
}

std::string topics_json(const std::vector<TopicReport>& topics, std::string_view bus) {
  std::string list = "[";
  for (const auto& r : topics) {
    const TopicInfo& t = r.info;
    std::string publishers = "[";
    for (const auto& p : t.publishers) {
      if (publishers.size() > 1) publishers += ",";
      publishers += participant_json(p, true, 0);
    }
    publishers += "]";
    std::string subscribers = "[";
    for (std::size_t i = 0; i < t.subscribers.size(); ++i) {
      if (subscribers.size() > 1) subscribers += ",";
      subscribers += participant_json(t.subscribers[i], false, r.subscriber_delivered_per_s[i]);
    }
    subscribers += "]";
    const std::string qos =
        JsonObject()
            .add("max_payload", t.max_payload)
            .add("history", static_cast<std::int64_t>(t.history))
            .add("capacity", static_cast<std::int64_t>(t.capacity))
            .add("priority_capacity", static_cast<std::int64_t>(t.priority_capacity))
            .str();
    if (list.size() > 1) list += ",";
    list += JsonObject()
                .add("name", t.name)
                .add("type", t.type.name)
                .add("type_size", static_cast<std::int64_t>(t.type.size))
                .add("transport", engine::to_string(t.transport))
                .add_raw("qos", qos)
                .add_raw("publishers", publishers)
                .add_raw("subscribers", subscribers)
                .add_raw("window_s", json_number(r.window_s))
                .add_raw("published_per_s", json_number(r.published_per_s))
                .add_raw("delivered_per_s", json_number(r.delivered_per_s))
                .add_raw("dropped_per_s", json_number(r.dropped_per_s))
                .add("dropped", r.dropped)
                .str();
  }
  list += "]";
  return JsonObject().add("bus", bus).add_raw("topics", list).str();
}

std::string topics_table(const std::vector<TopicReport>& topics) {
  std::vector<std::vector<std::string>> rows = {{"TOPIC", "TYPE", "TRANSPORT", "PUB", "SUBS", "QOS",
                                                 "PUB/S", "DELIVERED/S", "DROPPED", "DROPPED/S"}};
  for (const auto& r : topics) {
    const TopicInfo& t = r.info;
    std::string pub = "-";
    if (!t.publishers.empty()) {
      pub = std::to_string(t.publishers[0].pid) + (t.publishers[0].alive ? "" : " (dead)");
    }
    std::size_t block = 0;
    std::size_t lossy = 0;
    for (const auto& s : t.subscribers) {
      (s.overflow == engine::Overflow::block ? block : lossy) += 1;
    }
    std::string subs = std::to_string(t.subscribers.size());
    if (!t.subscribers.empty()) {
      subs += " (" + std::to_string(block) + " block, " + std::to_string(lossy) + " lossy)";
    }
    std::string qos = "cap " + std::to_string(t.capacity) + ", hist " + std::to_string(t.history) +
                      ", max " + human_bytes(t.max_payload);
    std::string type = t.type.name;
    if (t.type.size != 0) type += " (" + std::to_string(t.type.size) + " B)";
    rows.push_back({t.name, type, engine::to_string(t.transport), pub, subs, qos,
                    human_rate(r.published_per_s), human_rate(r.delivered_per_s),
                    std::to_string(r.dropped), human_rate(r.dropped_per_s)});
  }
  return render_table(rows);
}

engine::Result<engine::RawSubscriber> observe(Bus& bus, const ObserveOptions& options,
                                              std::FILE* waiting) {
  if (auto ok = engine::check_topic_name(options.topic); !ok) return tl::unexpected(ok.error());
  const auto deadline = Clock::now() + options.wait;
  bool said = false;
  for (;;) {
    auto topics = bus.topics();
    if (!topics) return tl::unexpected(topics.error());
    const auto found = std::find_if(topics->begin(), topics->end(),
                                    [&](const TopicInfo& t) { return t.name == options.topic; });
    if (found != topics->end()) {
      engine::TopicOptions topic;
      topic.transport = found->transport;
      topic.max_payload = found->max_payload;
      topic.history = found->history;
      topic.capacity = found->capacity;
      topic.priority_capacity = found->priority_capacity;
      engine::SubscriberOptions sub;
      sub.overflow = engine::Overflow::discard_oldest;
      sub.history = options.history;
      std::uint32_t room = options.depth;
      if (found->transport == engine::TopicTransport::native && found->capacity > 0) {
        room = found->capacity > found->history ? found->capacity - found->history : 1;
      } else if (found->transport == engine::TopicTransport::iceoryx) {
        room = 256;
      }
      sub.depth = std::max<std::uint32_t>(1, std::min(options.depth, room));
      return bus.subscribe(options.topic, found->type, topic, sub);
    }
    if (options.wait.count() == 0 || (options.wait.count() > 0 && Clock::now() >= deadline)) {
      return tl::unexpected(
          Error{Errc::not_found, "no topic '" + options.topic + "' on bus '" + bus.name() + "'"});
    }
    if (!said && waiting != nullptr) {
      std::fprintf(waiting, "waiting for topic '%s' on bus '%s' to appear...\n",
                   options.topic.c_str(), bus.name().c_str());
      std::fflush(waiting);
      said = true;
    }
    if (readable(options.stop_fd)) {
      return tl::unexpected(
          Error{Errc::unavailable, "stopped while waiting for topic '" + options.topic + "'"});
    }
    pollfd p{options.stop_fd, POLLIN, 0};
    ::poll(&p, options.stop_fd >= 0 ? 1 : 0, 100);
  }
}

void RateWindow::add(Clock::time_point at) {
  ++count_;
  if (last_) {
    intervals_.push_back(seconds(at - *last_));
    if (intervals_.size() > window_) intervals_.pop_front();
  }
  last_ = at;
}

std::optional<RateWindow::Stats> RateWindow::stats() const {
  if (intervals_.empty()) return std::nullopt;
  Stats s;
  s.window = intervals_.size();
  double sum = 0;
  s.min_s = std::numeric_limits<double>::infinity();
  s.max_s = 0;
  for (const double d : intervals_) {
    sum += d;
    s.min_s = std::min(s.min_s, d);
    s.max_s = std::max(s.max_s, d);
  }
  const double mean = sum / static_cast<double>(s.window);
  double var = 0;
  for (const double d : intervals_) var += (d - mean) * (d - mean);
  s.std_s = std::sqrt(var / static_cast<double>(s.window));
  s.rate = mean > 0 ? 1.0 / mean : std::numeric_limits<double>::infinity();
  return s;
}

namespace {

// Takes every waiting sample, then sleeps on the subscriber's notify fd (or polls every 10 ms
// without one) and the stop fd; `tick` runs at least every `every`. Ends when `on_sample` or
// `tick` says so, the stop fd is readable, or `duration` passed.
void pump(engine::RawSubscriber& subscriber, int stop_fd, std::chrono::milliseconds duration,
          std::chrono::milliseconds every,
          const std::function<bool(const engine::Frame&, Clock::time_point)>& on_sample,
          const std::function<bool(Clock::time_point)>& tick) {
  auto notify = subscriber.notify_fd();
  const int notify_fd = notify ? *notify : -1;
  const auto start = Clock::now();
  const auto end = duration.count() > 0 ? start + duration : Clock::time_point::max();
  auto next_tick = start + every;
  for (;;) {
    for (;;) {
      const engine::Frame frame = subscriber.try_take();
      if (!frame.ok()) break;
      const bool more = on_sample(frame, Clock::now());
      subscriber.release();
      if (!more) return;
    }
    auto now = Clock::now();
    if (now >= next_tick) {
      if (!tick(now)) return;
      next_tick = now + every;
    }
    if (now >= end) return;
    auto wait = std::min({next_tick, end, now + std::chrono::milliseconds(100)}) - now;
    int timeout = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
    if (notify_fd < 0) timeout = std::min(timeout, 10);
    pollfd fds[2] = {{stop_fd, POLLIN, 0}, {notify_fd, POLLIN, 0}};
    ::poll(fds, 2, std::max(timeout, 0));
    if ((fds[0].revents & POLLIN) != 0) return;
  }
}

}  // namespace

int run_echo(engine::RawSubscriber& subscriber, const EchoOptions& options, std::FILE* out,
             int stop_fd) {
  std::uint64_t seen = 0;
  pump(
      subscriber, stop_fd, options.duration, std::chrono::milliseconds(500),
      [&](const engine::Frame& frame, Clock::time_point) {
        ++seen;
        const auto bytes = frame.bytes();
        if (options.json) {
          JsonObject o;
          o.add("seq", seen).add("size", static_cast<std::int64_t>(bytes.size()));
          const auto shown = bytes.first(std::min(bytes.size(), options.max_bytes));
          if (options.text) {
            o.add("text", printable_text(shown, options.max_bytes));
          } else {
            o.add("hex", hex_string(shown));
          }
          o.add("truncated", shown.size() < bytes.size());
          std::fprintf(out, "%s\n", o.str().c_str());
        } else if (options.text) {
          std::fprintf(out, "%s\n", printable_text(bytes, options.max_bytes).c_str());
        } else {
          std::fprintf(out, "--- #%llu  %zu bytes\n%s", static_cast<unsigned long long>(seen),
                       bytes.size(), hex_dump(bytes, options.max_bytes).c_str());
        }
        std::fflush(out);
        return options.count == 0 || seen < options.count;
      },
      [](Clock::time_point) { return true; });
  return 0;
}

int run_hz(engine::RawSubscriber& subscriber, const HzOptions& options, std::FILE* out,
           int stop_fd) {
  RateWindow window(options.window);
  std::uint64_t reports = 0;
  auto report = [&](Clock::time_point) {
    ++reports;
    const auto stats = window.stats();
    const auto counters = subscriber.counters();
    if (options.json) {
      JsonObject o;
      o.add("samples", window.count()).add("dropped", counters.dropped);
      if (stats) {
        o.add_raw("rate", json_number(stats->rate))
            .add_raw("min_s", json_number(stats->min_s))
            .add_raw("max_s", json_number(stats->max_s))
            .add_raw("std_s", json_number(stats->std_s))
            .add("window", static_cast<std::uint64_t>(stats->window));
      } else {
        o.add_raw("rate", "null");
      }
      std::fprintf(out, "%s\n", o.str().c_str());
    } else if (stats) {
      std::fprintf(out,
                   "average rate: %.3f\n\tmin: %.6fs max: %.6fs std dev: %.6fs window: %zu "
                   "dropped: %llu\n",
                   stats->rate, stats->min_s, stats->max_s, stats->std_s, stats->window,
                   static_cast<unsigned long long>(counters.dropped));
    } else {
      std::fprintf(out, "no new messages\n");
    }
    std::fflush(out);
    return true;
  };
  pump(
      subscriber, stop_fd, options.duration, options.every,
      [&](const engine::Frame&, Clock::time_point at) {
        window.add(at);
        return true;
      },
      report);
  if (reports == 0) report(Clock::now());  // a --duration shorter than one report period
  return 0;
}

}  // namespace symphony::cli
