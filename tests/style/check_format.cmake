# SPDX-License-Identifier: MIT
# Fails (and lists the files) when any C file under src, include, plugins, mcp, tests or examples differs from
# .clang-format. Run `clang-format -i <file>` to fix.
file(GLOB_RECURSE files ${SOURCE_DIR}/src/*.[ch] ${SOURCE_DIR}/include/*.[ch] ${SOURCE_DIR}/plugins/*.[ch]
     ${SOURCE_DIR}/mcp/*.[ch] ${SOURCE_DIR}/tests/*.[ch] ${SOURCE_DIR}/examples/*.[ch])
list(FILTER files EXCLUDE REGEX "/node_modules/")
set(bad "")
foreach(f ${files})
    execute_process(COMMAND ${CLANG_FORMAT} --dry-run --Werror ${f} RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    if(NOT rc EQUAL 0)
        list(APPEND bad ${f})
    endif()
endforeach()
if(bad)
    string(REPLACE ";" "\n  " bad "${bad}")
    message(FATAL_ERROR "not formatted per .clang-format:\n  ${bad}")
endif()
list(LENGTH files n)
message(STATUS "${n} files formatted")
