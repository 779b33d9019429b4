#pragma once
// Reads ptxas's resource report (`nvcc -Xptxas -v`; cuobjdump is not installed) and turns
// a kernel's figures into the occupancy they imply on a given GPU (cuda_occupancy.h, the
// CUDA toolkit's standalone calculator: no driver, no GPU needed).
#include <cuda_occupancy.h>
#include <cxxabi.h>

#include <cstdlib>
#include <memory>
#include <regex>
#include <string>
#include <vector>

namespace rlxf::cuda::ptxas {

// One function's figures for one architecture.
struct Function {
  std::string name;  // demangled
  int arch = 0;      // 80 for sm_80
  bool entry = false;  // a __global__ kernel (others are non-inlined device functions)
  int registers = 0, barriers = 0;
  long stack_bytes = 0, spill_store_bytes = 0, spill_load_bytes = 0, static_smem_bytes = 0;
};

inline std::string demangle(const std::string& mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> text(abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status), std::free);
  return status == 0 ? std::string(text.get()) : mangled;
}

// Every function of a report, in order.
inline std::vector<Function> parse(const std::string& report) {
  static const std::regex compiling(R"(Compiling entry function '([^']+)' for 'sm_(\d+)')");
  static const std::regex properties(R"(Function properties for (\S+))");
  static const std::regex frame(R"((\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads)");
  static const std::regex used(R"(Used (\d+) registers)");
  static const std::regex barriers(R"(used (\d+) barriers)");
  static const std::regex smem(R"((\d+) bytes smem)");
  std::vector<Function> out;
  Function* current = nullptr;
  int arch = 0;
  std::string entry_name;
  std::size_t start = 0;
  while (start < report.size()) {
    std::size_t end = report.find('\n', start);
    if (end == std::string::npos) end = report.size();
    const std::string line = report.substr(start, end - start);
    start = end + 1;
    std::smatch m;
    if (std::regex_search(line, m, compiling)) {
      entry_name = m[1];
      arch = std::stoi(m[2]);
    } else if (std::regex_search(line, m, properties)) {
      Function f;
      f.arch = arch;
      f.entry = m[1] == entry_name;
      f.name = demangle(m[1]);
      out.push_back(f);
      current = &out.back();
    } else if (current != nullptr && std::regex_search(line, m, frame)) {
      current->stack_bytes = std::stol(m[1]);
      current->spill_store_bytes = std::stol(m[2]);
      current->spill_load_bytes = std::stol(m[3]);
    } else if (current != nullptr && std::regex_search(line, m, used)) {
      current->registers = std::stoi(m[1]);
      if (std::regex_search(line, m, barriers)) current->barriers = std::stoi(m[1]);
      if (std::regex_search(line, m, smem)) current->static_smem_bytes = std::stol(m[1]);
    }
  }
  return out;
}

// The GPUs the report covers: the first of each architecture CI compiles for.
inline cudaOccDeviceProp device(int arch) {
  cudaOccDeviceProp p{};
  p.computeMajor = arch / 10;
  p.computeMinor = arch % 10;
  p.maxThreadsPerBlock = 1024;
  p.maxThreadsPerMultiprocessor = 2048;
  p.regsPerBlock = 65536;
  p.regsPerMultiprocessor = 65536;
  p.warpSize = 32;
  p.sharedMemPerBlock = 48 * 1024;
  p.reservedSharedMemPerBlock = 1024;
  if (arch == 90) {  // H100 SXM
    p.sharedMemPerMultiprocessor = 228 * 1024;
    p.sharedMemPerBlockOptin = 227 * 1024;
    p.numSms = 132;
  } else {  // A100
    p.sharedMemPerMultiprocessor = 164 * 1024;
    p.sharedMemPerBlockOptin = 163 * 1024;
    p.numSms = 108;
  }
  return p;
}

inline const char* device_name(int arch) { return arch == 90 ? "H100" : "A100"; }

struct Occupancy {
  int blocks_per_sm = 0;
  double warps_fraction = 0;  // resident warps / the SM's 64
  std::string limited_by;
};

inline Occupancy occupancy(const Function& f, int threads, long dynamic_smem_bytes) {
  const cudaOccDeviceProp props = device(f.arch);
  cudaOccFuncAttributes attributes{};
  attributes.maxThreadsPerBlock = threads;
  attributes.numRegs = f.registers;
  attributes.sharedSizeBytes = static_cast<size_t>(f.static_smem_bytes);
  attributes.partitionedGCConfig = PARTITIONED_GC_OFF;
  attributes.shmemLimitConfig = FUNC_SHMEM_LIMIT_OPTIN;
  attributes.maxDynamicSharedSizeBytes = static_cast<size_t>(dynamic_smem_bytes);
  attributes.numBlockBarriers = 1;
  cudaOccDeviceState state;
  cudaOccResult result{};
  Occupancy o;
  if (cudaOccMaxActiveBlocksPerMultiprocessor(&result, &props, &attributes, &state, threads,
                                              static_cast<size_t>(dynamic_smem_bytes)) != CUDA_OCC_SUCCESS)
    return o;
  o.blocks_per_sm = result.activeBlocksPerMultiprocessor;
  o.warps_fraction = o.blocks_per_sm * (threads / 32) / 64.0;
  const unsigned l = result.limitingFactors;
  for (auto [bit, what] : {std::pair{OCC_LIMIT_REGISTERS, "registers"}, {OCC_LIMIT_SHARED_MEMORY, "shared memory"},
                           {OCC_LIMIT_WARPS, "warps"}, {OCC_LIMIT_BLOCKS, "blocks"}})
    if (l & bit) o.limited_by += (o.limited_by.empty() ? "" : ", ") + std::string(what);
  return o;
}

}  // namespace rlxf::cuda::ptxas
