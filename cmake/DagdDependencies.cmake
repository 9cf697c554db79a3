# Finds every third-party library dagd links against. All of them come from Debian 12 packages
# listed in scripts/debian-packages.txt.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(Protobuf REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS graph)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(absl REQUIRED)
find_package(OpenSSL REQUIRED)

find_package(gRPC CONFIG REQUIRED)
find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

if(DAGD_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
