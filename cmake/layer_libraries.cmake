# SPDX-License-Identifier: MIT
# One static library per layer of cmake/layers.cmake (lg_core, lg_domain, lg_io, lg_services, lg_runtime, lg_pipeline,
# lg_http, lg_mcp, lg_app), each linked to the layer below it, and each compiled against its own include root:
# <build>/layers/<layer>/ holds one symlink per directory of its own and the lower layers ("core" -> src/core, ...),
# and no -I points into the source tree. An include of a higher layer is then "No such file" at compile time, and
# cmake/check_layers.cmake (run before anything compiles) names the offending edge. lg_all is everything, for tests.
include(${CMAKE_CURRENT_LIST_DIR}/layers.cmake)

# the check runs again whenever a C file, the map or the checker changes
file(GLOB_RECURSE LG_LAYERED_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/*.[ch] ${CMAKE_SOURCE_DIR}/mcp/*.[ch]
     ${CMAKE_SOURCE_DIR}/include/*.h)
add_custom_command(OUTPUT ${CMAKE_BINARY_DIR}/layers/check.stamp
                   COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${CMAKE_SOURCE_DIR} -DSTAMP=${CMAKE_BINARY_DIR}/layers/check.stamp
                           -P ${CMAKE_CURRENT_LIST_DIR}/check_layers.cmake
                   DEPENDS ${LG_LAYERED_FILES} ${CMAKE_CURRENT_LIST_DIR}/layers.cmake
                           ${CMAKE_CURRENT_LIST_DIR}/check_layers.cmake
                   COMMENT "Checking includes against the layer map (cmake/layers.cmake)" VERBATIM)
add_custom_target(lg_layer_check DEPENDS ${CMAKE_BINARY_DIR}/layers/check.stamp)

# directory keys per layer
get_cmake_property(_lg_vars VARIABLES)
set(LG_LAYER_KEYS "")
foreach(_v ${_lg_vars})
    if(_v MATCHES "^LG_LAYER_DIR_(.+)$")
        list(APPEND LG_LAYER_KEYS ${CMAKE_MATCH_1})
    endif()
endforeach()

function(lg_layer_key_path key out)
    if(DEFINED LG_LAYER_PATH_${key})
        set(${out} ${CMAKE_SOURCE_DIR}/${LG_LAYER_PATH_${key}} PARENT_SCOPE)
    else()
        set(${out} ${CMAKE_SOURCE_DIR}/src/${key} PARENT_SCOPE)
    endif()
endfunction()

set(_lg_below "")
foreach(layer ${LG_LAYER_ORDER})
    set(rank ${LG_LAYER_RANK_${layer}})
    set(root ${CMAKE_BINARY_DIR}/layers/${layer})
    file(REMOVE_RECURSE ${root})
    file(MAKE_DIRECTORY ${root})
    # keys this layer sees: its own and lower ones, plus the directories named by its allowed side edges
    set(visible "")
    set(sources "")
    foreach(key ${LG_LAYER_KEYS})
        set(kl ${LG_LAYER_DIR_${key}})
        if(kl STREQUAL layer OR LG_LAYER_RANK_${kl} LESS rank)
            list(APPEND visible ${key})
        endif()
        if(kl STREQUAL layer)
            lg_layer_key_path(${key} path)
            file(GLOB_RECURSE _src CONFIGURE_DEPENDS ${path}/*.c)
            list(APPEND sources ${_src})
        endif()
    endforeach()
    foreach(edge ${LG_LAYER_ALLOWED_${layer}})
        string(REGEX REPLACE "^.* -> ([^/]+)/.*$" "\\1" key "${edge}")
        list(APPEND visible ${key})
    endforeach()
    list(REMOVE_DUPLICATES visible)
    foreach(key ${visible})
        lg_layer_key_path(${key} path)
        file(CREATE_LINK ${path} ${root}/${key} SYMBOLIC)
    endforeach()
    if(layer STREQUAL "app")
        list(REMOVE_ITEM sources ${CMAKE_SOURCE_DIR}/src/main.c)
    endif()

    if(sources)
        add_library(lg_${layer} STATIC ${sources})
        set(scope PUBLIC)
    else() # a layer whose directory does not exist yet
        add_library(lg_${layer} INTERFACE)
        set(scope INTERFACE)
    endif()
    target_include_directories(lg_${layer} ${scope} ${root})
    add_dependencies(lg_${layer} lg_layer_check)
    # http and mcp share a rank: both sit on the pipeline, not on each other (the side edges are linked below)
    if(_lg_below)
        target_link_libraries(lg_${layer} ${scope} ${_lg_below})
    endif()
    if(NOT layer STREQUAL "http")
        if(layer STREQUAL "mcp")
            set(_lg_below lg_http lg_mcp)
        else()
            set(_lg_below lg_${layer})
        endif()
    endif()
endforeach()

# side edges between layers of one rank (see LG_LAYER_ALLOWED_* in layers.cmake); static libraries may cycle
foreach(layer ${LG_LAYER_ORDER})
    foreach(edge ${LG_LAYER_ALLOWED_${layer}})
        string(REGEX REPLACE "^.* -> ([^/]+)/.*$" "\\1" key "${edge}")
        set(other lg_${LG_LAYER_DIR_${key}})
        if(NOT other STREQUAL "lg_${layer}")
            target_link_libraries(lg_${layer} PUBLIC ${other})
        endif()
    endforeach()
endforeach()

# third-party headers (SYSTEM), libraries and build-wide definitions enter at the bottom and reach every layer
target_include_directories(lg_core SYSTEM PUBLIC ${H2O_INCLUDE_DIRS} ${UV_INCLUDE_DIRS} ${LUAJIT_INCLUDE_DIRS}
                           ${CURL_INCLUDE_DIRS} ${JANSSON_INCLUDE_DIRS})
target_compile_definitions(lg_core PUBLIC LG_INSTALL_PLUGIN_DIR="${LG_INSTALL_PLUGIN_DIR}"
                           LG_INSTALL_POLICY_DIR="${LG_INSTALL_POLICY_DIR}" LG_INSTALL_UI_DIR="${LG_INSTALL_UI_DIR}")
target_link_libraries(lg_core PUBLIC PkgConfig::H2O PkgConfig::UV PkgConfig::LUAJIT PkgConfig::CURL PkgConfig::JANSSON
                      PkgConfig::OPENSSL PkgConfig::SQLITE PkgConfig::HIREDIS PkgConfig::LIBPQ Threads::Threads ${CMAKE_DL_LIBS} m)

# everything, for tests and tools that reach into any layer
add_library(lg_all INTERFACE)
target_link_libraries(lg_all INTERFACE lg_app)
