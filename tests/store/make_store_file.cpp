// Writes the sample store (sample_store.hpp) with this build's schema, for tests/store/data:
//   build/tests/store/make_store_file tests/store/data/store-vN.sqlite   (N: this build's newest version)
// Run it once when a migration is added, and commit the file beside the older ones; never rewrite an
// older version's file.
#include <cstdio>
#include <filesystem>
#include <string>

#include "sample_store.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_store_file OUT.sqlite\n");
    return 2;
  }
  const std::string out = argv[1];
  if (std::filesystem::exists(out)) {
    std::fprintf(stderr, "make_store_file: %s exists; older versions' files are never rewritten\n", out.c_str());
    return 1;
  }
  {
    paraplan::planner::Store s(out);
    paraplan::test::write_sample(s);
    std::printf("%s: schema version %d\n", out.c_str(), s.schema_version());
  }  // closing the last connection checkpoints the WAL into the file and removes it
  return 0;
}
