#pragma once
// KernelList: a compile-time list of kernel types, so each kernel family can name the
// configurations it ships in one place (what CI compiles for every architecture and what
// the resource report covers).
namespace rlxf::cuda {

template <class... Kernels>
struct KernelList {};

namespace kernel_list_detail {
template <class... Lists>
struct concat;
template <>
struct concat<> {
  using type = KernelList<>;
};
template <class... A>
struct concat<KernelList<A...>> {
  using type = KernelList<A...>;
};
template <class... A, class... B, class... Rest>
struct concat<KernelList<A...>, KernelList<B...>, Rest...> {
  using type = typename concat<KernelList<A..., B...>, Rest...>::type;
};
}  // namespace kernel_list_detail

// The kernels of several lists, in order.
template <class... Lists>
using concat_kernel_lists = typename kernel_list_detail::concat<Lists...>::type;

// Calls f.template operator()<K>() for each kernel K of the list.
template <class... Kernels, class F>
void for_each_kernel(KernelList<Kernels...>, F&& f) {
  (f.template operator()<Kernels>(), ...);
}

}  // namespace rlxf::cuda
