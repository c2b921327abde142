#pragma once
// symphony::sdk::ui — an extension's user interface as a function of its state.
//
//   using namespace symphony::sdk::ui;
//   ext.ui([&] {
//     return stack("root", {heading("title", "Files"),
//                           input("q").prop("placeholder", "name")
//                               .on("change", [&](const UiEvent& e) { query = e.value(); }),
//                           list("results", rows())});
//   });
//   ext.ui_changed();   // from any thread, when state the view reads has changed
//
// The view returns a tree of Elements: a node (id, type, props, children; docs/ui-protocol.md)
// plus the handlers bound to it. A node's `events` list is not written by hand: it is the names
// of the handlers bound with on(), so the browser only ever offers events that someone handles.
// The SDK keeps the tree it last published, diffs each render against it and publishes only
// the patch (see Extension::ui for when renders happen and on which thread).
//
// Ids are the nodes' identity across renders (React's keys): derive them from what a node
// shows (a file's path, a row's key), not from its position, so that inserting an item moves
// nothing else.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "symphony/ui/tree.hpp"

namespace symphony::sdk::ui {

using Value = ::symphony::ui::Value;

// A browser's event, as the gateway passed it on.
class UiEvent {
 public:
  UiEvent(std::string node, std::string name, Value payload, std::uint64_t seq)
      : node_(std::move(node)), name_(std::move(name)), payload_(std::move(payload)), seq_(seq) {}
  const std::string& node() const noexcept { return node_; }
  const std::string& name() const noexcept { return name_; }  // "click", "change", ...
  const Value& payload() const noexcept { return payload_; }
  std::uint64_t seq() const noexcept { return seq_; }  // the browser's event counter
  // payload["value"] as text (an input's change and submit, a tab's change); a number or a
  // boolean as its JSON text; "" when absent.
  std::string value() const;

 private:
  std::string node_;
  std::string name_;
  Value payload_;
  std::uint64_t seq_;
};

using Handler = std::function<void(const UiEvent&)>;

// A node under construction and its handlers. Cheap to move; copies copy the subtree.
class Element {
 public:
  Element(std::string id, std::string type) : id_(std::move(id)), type_(std::move(type)) {}

  Element& prop(const std::string& key, Value value) & {
    props_[key] = std::move(value);
    return *this;
  }
  Element&& prop(const std::string& key, Value value) && {
    return std::move(prop(key, std::move(value)));
  }
  // Binds `handler` to this node's `event` (a second on() for one event replaces the first).
  Element& on(std::string event, Handler handler) &;
  Element&& on(std::string event, Handler handler) && {
    return std::move(on(std::move(event), std::move(handler)));
  }
  Element& add(Element child) & {
    children_.push_back(std::move(child));
    return *this;
  }
  Element&& add(Element child) && { return std::move(add(std::move(child))); }

  const std::string& id() const noexcept { return id_; }
  const std::string& type() const noexcept { return type_; }
  const Value& props() const noexcept { return props_; }
  const std::vector<Element>& children() const noexcept { return children_; }
  std::vector<Element>& children() noexcept { return children_; }
  const std::vector<std::pair<std::string, Handler>>& handlers() const noexcept {
    return handlers_;
  }

 private:
  std::string id_;
  std::string type_;
  Value props_ = Value::object();
  std::vector<std::pair<std::string, Handler>> handlers_;
  std::vector<Element> children_;
};

using View = std::function<Element()>;

// ---- element helpers: the browser's components (docs/ui-protocol.md, section 5) ----

Element element(std::string id, std::string type, std::vector<Element> children = {});
Element stack(std::string id, std::vector<Element> children = {});   // a column
Element hstack(std::string id, std::vector<Element> children = {});  // stack, direction row
Element card(std::string id, std::string title, std::vector<Element> children = {});
Element heading(std::string id, std::string text, int level = 1);
Element text(std::string id, std::string text);
Element badge(std::string id, std::string text, std::string tone = "default");
Element stat(std::string id, std::string label, Value value, std::string unit = "");
Element button(std::string id, std::string label);      // .on("click", ...)
Element input(std::string id, std::string value = "");  // .on("change"/"submit", ...)
Element list(std::string id, std::vector<Element> items = {});
Element table(std::string id, std::vector<std::string> columns, std::vector<Element> rows = {});
Element row(std::string id, std::vector<Element> cells = {});  // a table row
Element progress(std::string id, double percent, std::string label = "");
Element log_view(std::string id, std::vector<std::string> lines);  // type "log"
struct Series {
  std::string name;
  std::vector<double> points;
};
Element line_chart(std::string id, std::vector<Series> series);
Element tabs(std::string id, std::string selected, std::vector<Element> tab_list);
Element tab(std::string id, std::string label, std::vector<Element> children = {});

// ---- rendering (what the SDK does with a view's result; public for tests) ----

struct Rendered {
  ::symphony::ui::Node tree;
  std::map<std::string, std::map<std::string, Handler, std::less<>>, std::less<>> handlers;
};
// The node tree (events from the bound handlers, in the order bound) and the handler table.
// Moves out of `root`. Not validated: see symphony::ui::validate.
Rendered render(Element&& root);

struct UiOptions {
  // Renders are at least this far apart; a ui_changed() in between is folded into the next
  // one (a 1 kHz stream of changes yields ~60 renders a second). The first render after a quiet
  // spell happens at once.
  std::chrono::milliseconds min_interval{16};
  // How long a symphony.ui.event request waits for its handler and re-render before it
  // answers with an error.
  std::chrono::milliseconds event_timeout{2000};
};

}  // namespace symphony::sdk::ui
