# Compiles one kernel translation unit with nvcc for every architecture in ARCHS (one object
# holding a cubin per architecture), keeping ptxas's resource report (-Xptxas -v: registers,
# spills, shared memory per kernel and architecture) in LOG.
#   cmake -DNVCC=... -DSOURCE=... -DARCHS="80;90" -DINCLUDE="dir;..." [-DDEFINES="NAME;..."]
#         -DOBJECT=... -DLOG=... -P compile_kernels.cmake
set(gencode)
foreach(arch ${ARCHS})
  list(APPEND gencode -gencode arch=compute_${arch},code=sm_${arch})
endforeach()
set(flags)
foreach(dir ${INCLUDE})
  list(APPEND flags -I${dir})
endforeach()
foreach(define ${DEFINES})
  list(APPEND flags -D${define})
endforeach()
execute_process(
  COMMAND ${NVCC} -std=c++20 -O3 -Xcompiler=-fPIC ${flags} ${gencode} -Xptxas -v -c ${SOURCE} -o ${OBJECT}
  RESULT_VARIABLE status
  OUTPUT_QUIET
  ERROR_FILE ${LOG})
if(NOT status EQUAL 0)
  file(READ ${LOG} report)
  message(FATAL_ERROR "nvcc failed on ${SOURCE}:\n${report}")
endif()
