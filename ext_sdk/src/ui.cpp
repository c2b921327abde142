// The UI builder: element helpers and the render of an Element tree into a node tree and its
// handler table.

#include "symphony/sdk/ui.hpp"

namespace symphony::sdk::ui {

std::string UiEvent::value() const {
  if (!payload_.is_object()) return {};
  auto it = payload_.find("value");
  if (it == payload_.end() || it->is_null()) return {};
  if (it->is_string()) return it->get<std::string>();
  return it->dump(-1, ' ', false, Value::error_handler_t::replace);
}

Element& Element::on(std::string event, Handler handler) & {
  for (auto& [name, h] : handlers_) {
    if (name == event) {
      h = std::move(handler);
      return *this;
    }
  }
  handlers_.emplace_back(std::move(event), std::move(handler));
  return *this;
}

Element element(std::string id, std::string type, std::vector<Element> children) {
  Element e(std::move(id), std::move(type));
  e.children() = std::move(children);
  return e;
}

Element stack(std::string id, std::vector<Element> children) {
  return element(std::move(id), "stack", std::move(children));
}

Element hstack(std::string id, std::vector<Element> children) {
  return element(std::move(id), "stack", std::move(children)).prop("direction", "row");
}

Element card(std::string id, std::string title, std::vector<Element> children) {
  return element(std::move(id), "card", std::move(children)).prop("title", std::move(title));
}

Element heading(std::string id, std::string text, int level) {
  return Element(std::move(id), "heading").prop("text", std::move(text)).prop("level", level);
}

Element text(std::string id, std::string text) {
  return Element(std::move(id), "text").prop("text", std::move(text));
}

Element badge(std::string id, std::string text, std::string tone) {
  return Element(std::move(id), "badge")
      .prop("text", std::move(text))
      .prop("tone", std::move(tone));
}

Element stat(std::string id, std::string label, Value value, std::string unit) {
  Element e = Element(std::move(id), "stat")
                  .prop("label", std::move(label))
                  .prop("value", std::move(value));
  if (!unit.empty()) e.prop("unit", std::move(unit));
  return e;
}

Element button(std::string id, std::string label) {
  return Element(std::move(id), "button").prop("label", std::move(label));
}

Element input(std::string id, std::string value) {
  return Element(std::move(id), "input").prop("value", std::move(value));
}

Element list(std::string id, std::vector<Element> items) {
  return element(std::move(id), "list", std::move(items));
}

Element table(std::string id, std::vector<std::string> columns, std::vector<Element> rows) {
  return element(std::move(id), "table", std::move(rows)).prop("columns", std::move(columns));
}

Element row(std::string id, std::vector<Element> cells) {
  return element(std::move(id), "row", std::move(cells));
}

Element progress(std::string id, double percent, std::string label) {
  Element e = Element(std::move(id), "progress").prop("value", percent);
  if (!label.empty()) e.prop("label", std::move(label));
  return e;
}

Element log_view(std::string id, std::vector<std::string> lines) {
  return Element(std::move(id), "log").prop("lines", std::move(lines));
}

Element line_chart(std::string id, std::vector<Series> series) {
  Value list = Value::array();
  for (auto& s : series)
    list.push_back(Value{{"name", std::move(s.name)}, {"points", std::move(s.points)}});
  return Element(std::move(id), "line-chart").prop("series", std::move(list));
}

Element tabs(std::string id, std::string selected, std::vector<Element> tab_list) {
  return element(std::move(id), "tabs", std::move(tab_list)).prop("value", std::move(selected));
}

Element tab(std::string id, std::string label, std::vector<Element> children) {
  return element(std::move(id), "tab", std::move(children)).prop("label", std::move(label));
}

namespace {

::symphony::ui::Node convert(Element&& e, Rendered& out) {
  ::symphony::ui::Node node;
  node.id = e.id();
  node.type = e.type();
  node.props = e.props();
  if (!e.handlers().empty()) {
    auto& table = out.handlers[node.id];
    for (const auto& [name, handler] : e.handlers()) {
      node.events.push_back(name);
      table[name] = handler;
    }
  }
  node.children.reserve(e.children().size());
  for (auto& child : e.children()) node.children.push_back(convert(std::move(child), out));
  return node;
}

}  // namespace

Rendered render(Element&& root) {
  Rendered out;
  out.tree = convert(std::move(root), out);
  return out;
}

}  // namespace symphony::sdk::ui
