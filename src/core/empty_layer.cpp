// Stands in for a layer of docs/design.md's layout that has no sources yet, so the chain of
// layer libraries in CMakeLists.txt stays unbroken.
namespace spinlm {
void empty_layer_anchor() {}
}  // namespace spinlm
