// The run store read back from a file that may be anything (a corrupt or foreign SQLite file, a truncated
// one, not SQLite at all): opening and reading every run, its steps, memory rows and plan either works
// or fails with an error, never a crash.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "fuzz_util.hpp"
#include "paraplan/plan_io.hpp"
#include "paraplan/store.hpp"

using namespace paraplan::planner;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::scratch("runs.db");
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::filesystem::remove(path + suffix);
  fuzz::write(path, data, size);
  try {
    Store store(path);
    for (const RunRecord& r : store.runs()) {
      (void)store.steps(r.id);
      (void)store.memory(r.id);
      try {
        const nlohmann::json doc = parse_json_text(r.run.plan_json, "runs.plan_json");
        if (!fuzz::names_a_file(doc)) (void)plan_from_json(doc, ".");
      } catch (const PlanError&) {
      }
    }
  } catch (const std::runtime_error&) {  // sql::Error, PlanError: the file is refused with a message
  }
  return 0;
}
