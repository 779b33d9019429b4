// ptxas's resource reports of every shipped kernel, for every architecture CI compiles:
// no kernel may spill registers to local memory, every shipped configuration must have been
// compiled, and the registers, shared memory and the occupancy they imply on an A100 and an
// H100 are written to ptxas/resources.md (the table in docs/cuda.md).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <typeinfo>
#include <vector>

#include "ptxas_report.hpp"
#include "shipped_kernels.hpp"

using namespace rlxf::cuda;

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<int> architectures() {
  std::vector<int> archs;
  std::stringstream s(RLXF_PTXAS_ARCHS);
  for (std::string a; std::getline(s, a, ',');) {
    std::string digits;
    for (char c : a)
      if (c >= '0' && c <= '9') digits += c;
    archs.push_back(std::stoi(digits));
  }
  return archs;
}

// A kernel's type without the namespaces: "WmmaGemm<WmmaGemmTile<128, ...>, f16, float, false, true>".
std::string short_name(std::string type) {
  for (const std::string ns : {"rlxf::cuda::", "rlxf::"})
    for (std::size_t at; (at = type.find(ns)) != std::string::npos;) type.erase(at, ns.size());
  return type;
}

// Every function of every report, by file.
std::map<std::string, std::vector<ptxas::Function>> reports() {
  std::map<std::string, std::vector<ptxas::Function>> out;
  for (const auto& entry : std::filesystem::directory_iterator(RLXF_PTXAS_DIR))
    if (entry.path().extension() == ".log") out[entry.path().filename().string()] = ptxas::parse(read_file(entry.path()));
  return out;
}

}  // namespace

TEST_CASE("the ptxas report parser reads registers, spills and shared memory") {
  const std::string report =
      "ptxas info    : 0 bytes gmem\n"
      "ptxas info    : Compiling entry function '_ZN4rlxf4cuda3fooEv' for 'sm_80'\n"
      "ptxas info    : Function properties for _ZN4rlxf4cuda3fooEv\n"
      "    24 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads\n"
      "ptxas info    : Used 255 registers, used 1 barriers, 4096 bytes smem, 380 bytes cmem[0]\n"
      "ptxas info    : Compiling entry function '_Z3barv' for 'sm_90'\n"
      "ptxas info    : Function properties for _Z3barv\n"
      "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
      "ptxas info    : Used 40 registers, used 0 barriers, 380 bytes cmem[0]\n";
  const auto functions = ptxas::parse(report);
  REQUIRE(functions.size() == 2);
  CHECK(functions[0].name == "rlxf::cuda::foo()");
  CHECK(functions[0].arch == 80);
  CHECK(functions[0].entry);
  CHECK(functions[0].registers == 255);
  CHECK(functions[0].spill_store_bytes == 8);
  CHECK(functions[0].spill_load_bytes == 12);
  CHECK(functions[0].static_smem_bytes == 4096);
  CHECK(functions[1].name == "bar()");
  CHECK(functions[1].arch == 90);
  CHECK(functions[1].registers == 40);
  CHECK(functions[1].spill_store_bytes == 0);
  // Occupancy of the first on an A100: 255 registers x 256 threads = all 65536 registers
  // of an SM (allocation granularity included), so one block; 8 of 64 warps.
  const auto o = ptxas::occupancy(functions[0], 256, 0);
  CHECK(o.blocks_per_sm == 1);
  CHECK(o.warps_fraction == doctest::Approx(0.125));
  CHECK(o.limited_by.find("registers") != std::string::npos);
}

TEST_CASE("no shipped kernel spills registers, on any architecture") {
  const auto all = reports();
  REQUIRE_FALSE(all.empty());
  int kernels = 0;
  for (const auto& [file, functions] : all)
    for (const auto& f : functions) {
      INFO(file, ": ", f.name);
      CHECK(f.spill_store_bytes == 0);
      CHECK(f.spill_load_bytes == 0);
      kernels += f.entry;
    }
  MESSAGE(kernels, " kernels in ", all.size(), " reports");
}

TEST_CASE("every shipped kernel is compiled for every architecture, resources and occupancy") {
  const auto all = reports();
  std::ostringstream table;
  table << "| kernel | arch | threads | registers | static smem | dynamic smem | blocks/SM | warps/SM | limited by |\n"
        << "|---|---|---|---|---|---|---|---|---|\n";
  int rows = 0;
  for (const int arch : architectures()) {
    for_each_shipped_kernel([&]<class K>() {
      const std::string type = ptxas::demangle(typeid(K).name());
      const ptxas::Function* found = nullptr;
      for (const auto& [file, functions] : all)
        for (const auto& f : functions)
          if (f.entry && f.arch == arch && (f.name.find("kernel_entry<" + type + ">") != std::string::npos ||
                                            f.name.find("kernel_entry<" + type + " >") != std::string::npos))
            found = &f;
      INFO("sm_", arch, ": ", type);
      REQUIRE(found != nullptr);
      const int threads = K::max_threads;
      const long dynamic = shipped_shared_bytes<K>();
      const auto o = ptxas::occupancy(*found, threads, dynamic);
      CHECK(o.blocks_per_sm >= 1);  // the kernel fits an SM at all
      table << "| `" << short_name(type) << "` | sm_" << arch << " ("
            << ptxas::device_name(arch) << ") | " << threads << " | " << found->registers << " | "
            << found->static_smem_bytes << " | " << dynamic << " | " << o.blocks_per_sm << " | "
            << std::lround(o.warps_fraction * 64) << "/64 | " << o.limited_by << " |\n";
      ++rows;
    });
  }
  std::ofstream(std::filesystem::path(RLXF_PTXAS_DIR) / "resources.md") << table.str();
  MESSAGE(rows, " kernel x architecture rows written to ", RLXF_PTXAS_DIR, "/resources.md");
}
