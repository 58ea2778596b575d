# SPDX-License-Identifier: MIT
# The include roots really hide upper layers: probe.c (core + http headers) must compile against http's root and fail
# with "No such file" for the http header against the services root (router, policy, auth).
#   cmake -DCC=<compiler> -DLAYERS=<build>/layers -DPROBE=<probe.c> -DSYSINC=<dir|dir|...> -P check_include_roots.cmake
# SYSINC: the third-party include directories (h2o, libuv, jansson, ...), '|'-separated.
string(REPLACE "|" ";" SYSINC "${SYSINC}")
set(sys "")
foreach(d ${SYSINC})
    list(APPEND sys -isystem ${d})
endforeach()
execute_process(COMMAND ${CC} -fsyntax-only -D_GNU_SOURCE -DH2O_USE_LIBUV=1 ${sys} -I${LAYERS}/http ${PROBE}
                RESULT_VARIABLE rc ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "probe does not compile against the http include root:\n${out}")
endif()
execute_process(COMMAND ${CC} -fsyntax-only -D_GNU_SOURCE -DH2O_USE_LIBUV=1 ${sys} -I${LAYERS}/services ${PROBE}
                RESULT_VARIABLE rc ERROR_VARIABLE out)
if(rc EQUAL 0)
    message(FATAL_ERROR "services include root exposes http/server.h: upper layers are visible")
endif()
if(NOT out MATCHES "http/server.h: No such file")
    message(FATAL_ERROR "probe failed for another reason than the hidden http header:\n${out}")
endif()
message(STATUS "services cannot see http/server.h; http can")
