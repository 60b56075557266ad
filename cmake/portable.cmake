# The third-party libraries as zdm's programs link them: zdm::fmt, zdm::spdlog, zdm::yaml_cpp,
# zdm::program_options, zdm::openssl, zdm::lz4, zdm::snappy, zdm::zlib.
#
# ZDM_PORTABLE (default ON; OFF under sanitizers and fuzzing): each native library comes from the
# static archive its Debian 12 -dev package ships (libssl.a, libyaml-cpp.a, liblz4.a, ...),
# libstdc++ and libgcc are linked statically, and fmt and spdlog are used header-only (Debian
# ships no static archive of either). zdm-proxy then needs nothing on a host but glibc
# (tests/proxy/test_artifact.py checks `ldd` and runs it in a chroot holding only glibc).
# OFF: the shared libraries, as the -dev packages' CMake files give them.
#
# zdm-deploy keeps the shared OpenSSL (OpenSSL::Crypto): it links libssh.so, which brings
# libcrypto.so, and one process must not hold two copies of OpenSSL.

if(zdm_sanitizers OR ZDM_FUZZ)
  set(zdm_portable_default OFF)
else()
  set(zdm_portable_default ON)
endif()
option(ZDM_PORTABLE "Link zdm-proxy's libraries statically (only glibc stays shared)"
       ${zdm_portable_default})

find_package(PkgConfig REQUIRED)
pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
find_package(Snappy REQUIRED CONFIG)
find_package(ZLIB REQUIRED)

# zdm_dependency(NAME PORTABLE_LIBS... SHARED SHARED_LIBS...): the INTERFACE target zdm::NAME.
function(zdm_dependency name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "PORTABLE;SHARED")
  add_library(zdm_dep_${name} INTERFACE)
  if(ZDM_PORTABLE)
    target_link_libraries(zdm_dep_${name} INTERFACE ${arg_PORTABLE})
  else()
    target_link_libraries(zdm_dep_${name} INTERFACE ${arg_SHARED})
  endif()
  add_library(zdm::${name} ALIAS zdm_dep_${name})
endfunction()

# zdm_static_archive(VAR NAME): the full path of libNAME.a, or a configure error naming the
# Debian package that ships it.
function(zdm_static_archive var name package)
  find_library(${var} NAMES lib${name}.a)
  if(NOT ${var})
    message(FATAL_ERROR "ZDM_PORTABLE needs lib${name}.a (Debian package ${package}); "
                        "install it or configure with -DZDM_PORTABLE=OFF")
  endif()
endfunction()

if(ZDM_PORTABLE)
  zdm_static_archive(ZDM_A_YAML yaml-cpp libyaml-cpp-dev)
  zdm_static_archive(ZDM_A_PO boost_program_options libboost-program-options-dev)
  zdm_static_archive(ZDM_A_SSL ssl libssl-dev)
  zdm_static_archive(ZDM_A_CRYPTO crypto libssl-dev)
  zdm_static_archive(ZDM_A_LZ4 lz4 liblz4-dev)
  zdm_static_archive(ZDM_A_SNAPPY snappy libsnappy-dev)
  zdm_static_archive(ZDM_A_Z z zlib1g-dev)
  get_target_property(zdm_spdlog_include spdlog::spdlog INTERFACE_INCLUDE_DIRECTORIES)
  # Every program, not only zdm-proxy: one build, one libstdc++ per process.
  add_link_options(-static-libstdc++ -static-libgcc)
endif()

zdm_dependency(fmt PORTABLE fmt::fmt-header-only SHARED fmt::fmt)
add_library(zdm_dep_spdlog_header_only INTERFACE)
if(ZDM_PORTABLE)
  target_include_directories(zdm_dep_spdlog_header_only INTERFACE ${zdm_spdlog_include})
  target_compile_definitions(zdm_dep_spdlog_header_only INTERFACE SPDLOG_FMT_EXTERNAL)
endif()
zdm_dependency(spdlog PORTABLE zdm_dep_spdlog_header_only zdm::fmt Threads::Threads
               SHARED spdlog::spdlog)
zdm_dependency(yaml_cpp PORTABLE ${ZDM_A_YAML} SHARED yaml-cpp)
zdm_dependency(program_options PORTABLE ${ZDM_A_PO} SHARED Boost::program_options)
target_include_directories(zdm_dep_program_options INTERFACE ${Boost_INCLUDE_DIRS})
zdm_dependency(openssl PORTABLE ${ZDM_A_SSL} ${ZDM_A_CRYPTO} ${CMAKE_DL_LIBS} Threads::Threads
               SHARED OpenSSL::SSL OpenSSL::Crypto)
target_include_directories(zdm_dep_openssl INTERFACE ${OPENSSL_INCLUDE_DIR})
zdm_dependency(lz4 PORTABLE ${ZDM_A_LZ4} SHARED PkgConfig::LZ4)
target_include_directories(zdm_dep_lz4 INTERFACE ${LZ4_INCLUDE_DIRS})
zdm_dependency(snappy PORTABLE ${ZDM_A_SNAPPY} SHARED Snappy::snappy)
zdm_dependency(zlib PORTABLE ${ZDM_A_Z} SHARED ZLIB::ZLIB)
