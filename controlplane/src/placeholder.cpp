// Replaced as the control plane grows (keeps the library non-empty until then).
namespace symphony::controlplane {
int placeholder_symbol() { return 0; }
}  // namespace symphony::controlplane
