// Training checkpoints on disk: names, durable writes, index.json, choosing and checking a checkpoint.
// Durability follows POSIX rename(2) (atomic replacement of a name) and fsync(2) on the file and on its
// directory, which Linux needs before a rename is itself durable (ext4 and xfs documentation; LWN
// "Ensuring data reaches disk", 2011).
#include "paraplan/exec/train_checkpoint.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "paraplan/exec/crc32.hpp"
#include "paraplan/exec/safetensors.hpp"
#include "paraplan/plan_io.hpp"

namespace paraplan::exec {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string padded(int n, int width) {
  char s[32];
  std::snprintf(s, sizeof s, "%0*d", width, n);
  return s;
}

void sync_path(const std::string& path, int flags, const char* what) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) throw FormatError(path + ": cannot open the " + what + " to sync it: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw FormatError(path + ": fsync of the " + what + " failed: " + std::strerror(err));
}

// The step of a directory named step-<digits>, or -1.
int step_of(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() == 5 || name.size() > 14) return -1;
  for (size_t i = 5; i < name.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return -1;
  return std::stoi(name.substr(5));
}

uint32_t parse_hex32(const std::string& s, bool& ok) {
  ok = s.size() == 8 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
  return ok ? static_cast<uint32_t>(std::stoul(s, nullptr, 16)) : 0;
}

// A field of index.json, checked; errors name the file and the field.
struct Fields {
  const json& j;
  const std::string& path;
  const json& at(const std::string& key, json::value_t type, const char* expected) const {
    if (!j.contains(key)) throw FormatError(path + ": \"" + key + "\" is missing");
    const json& v = j.at(key);
    const bool number_ok = type == json::value_t::number_unsigned && v.is_number_unsigned();
    if (!number_ok && v.type() != type) throw FormatError(path + ": \"" + key + "\" must be " + expected);
    return v;
  }
  int positive(const std::string& key) const {
    const json& v = at(key, json::value_t::number_unsigned, "a positive integer");
    if (v.get<uint64_t>() < 1 || v.get<uint64_t>() > (1u << 30))
      throw FormatError(path + ": \"" + key + "\" = " + v.dump() + ": must be a positive integer");
    return v.get<int>();
  }
};

std::string shown(const json& v) {
  if (v.is_null()) return "(none)";
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

json trained_with_json(const TrainedWith& t) {
  json out = json::object();
  const json model = planner::model_to_json(t.plan.model);
  for (const auto& [k, v] : model.items())
    if (k != "name") out["model." + k] = v;  // the name is a label; the dimensions are the model
  out["model.norm_eps"] = t.extras.norm_eps;
  out["model.rope_theta"] = t.extras.rope_theta;
  const json plan = planner::plan_to_json(t.plan);
  for (const char* k : {"seq_len", "micro_batch", "global_batch", "precision", "grad_dtype", "optimizer",
                        "flash_attention", "lora"})
    out[std::string("training.") + k] = plan.at("training").value(k, json());
  for (const char* k : {"dp", "tp", "pp", "cp", "ep", "zero"})
    out[std::string("parallel.") + k] = plan.at("parallel").value(k, json());
  out["--lr"] = t.lr;
  out["--weight-decay"] = t.weight_decay;
  out["optimizer.beta1"] = t.beta1;
  out["optimizer.beta2"] = t.beta2;
  out["optimizer.eps"] = t.eps;
  out["--seed"] = t.seed;
  out["--data"] = std::to_string(t.data_tokens) + " tokens, CRC-32 " + crc32_hex(t.data_crc32);
  return out;
}

std::string step_dir_name(int step) { return "step-" + padded(step, 8); }
// Hidden names (a leading dot) for the directories resolve_checkpoint never takes. Built with +=:
// GCC 12 warns falsely (-Wrestrict, GCC bug 105651) on "literal" + std::string&&.
static std::string hidden_step_dir(int step, const char* suffix) {
  std::string s = ".";
  s += step_dir_name(step);
  s += suffix;
  return s;
}

std::string partial_dir_name(int step) { return hidden_step_dir(step, ".partial"); }
std::string rank_file_name(int rank) { return "rank-" + padded(rank, 5) + ".safetensors"; }

void sync_file(const std::string& path) { sync_path(path, O_RDONLY, "file"); }
void sync_dir(const std::string& path) { sync_path(path, O_RDONLY | O_DIRECTORY, "directory"); }

void write_file_durably(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw FormatError(tmp + ": cannot create: " + std::strerror(errno));
    out << content;
    out.flush();
    if (!out) throw FormatError(tmp + ": write failed: " + std::strerror(errno));
  }
  sync_file(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw FormatError(path + ": cannot rename from " + tmp + ": " + std::strerror(errno));
  sync_dir(fs::path(path).parent_path().string());
}

json index_to_json(const CheckpointIndex& index) {
  json files = json::array();
  for (const CheckpointFile& f : index.files)
    files.push_back({{"name", f.name}, {"rank", f.rank}, {"bytes", f.bytes}, {"crc32", crc32_hex(f.crc32)}});
  json j = {{"format", kCheckpointFormat}, {"version", kCheckpointVersion}, {"step", index.step},
            {"world_size", index.world_size}, {"trained_with", index.trained_with}, {"plan", index.plan},
            {"files", files}};
  const std::string text = j.dump();  // keys sorted: the same text when read back
  j["index_crc32"] = crc32_hex(crc32(text.data(), text.size()));
  return j;
}

CheckpointIndex read_index(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FormatError(path + ": cannot open the checkpoint index: " + std::strerror(errno));
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw FormatError(path + ": not a JSON object (the checkpoint index is corrupt or truncated)");
  const Fields f{j, path};
  const std::string format = f.at("format", json::value_t::string, "a string").get<std::string>();
  if (format != kCheckpointFormat)
    throw FormatError(path + ": \"format\" = \"" + format + "\": not a paraplan training checkpoint");
  const int version = f.positive("version");
  if (version != kCheckpointVersion)
    throw FormatError(path + ": \"version\" = " + std::to_string(version) + ": this paraplan reads version " +
                      std::to_string(kCheckpointVersion) + " (use the paraplan that wrote it)");
  bool ok = false;
  const uint32_t recorded = parse_hex32(f.at("index_crc32", json::value_t::string, "8 hex digits").get<std::string>(), ok);
  if (!ok) throw FormatError(path + ": \"index_crc32\" must be 8 lower-case hex digits");
  json rest = j;
  rest.erase("index_crc32");
  const std::string text = rest.dump();
  const uint32_t actual = crc32(text.data(), text.size());
  if (actual != recorded)
    throw FormatError(path + ": CRC-32 of the index is " + crc32_hex(actual) + " but it records " +
                      crc32_hex(recorded) + ": the checkpoint index is corrupt");
  CheckpointIndex idx;
  idx.step = f.positive("step");
  idx.world_size = f.positive("world_size");
  idx.trained_with = f.at("trained_with", json::value_t::object, "an object");
  idx.plan = j.value("plan", json());
  std::set<int> ranks;
  for (const json& e : f.at("files", json::value_t::array, "an array")) {
    if (!e.is_object()) throw FormatError(path + ": each entry of \"files\" must be an object");
    const Fields g{e, path};
    CheckpointFile cf;
    cf.name = g.at("name", json::value_t::string, "a string").get<std::string>();
    if (cf.name.empty() || cf.name.find('/') != std::string::npos || cf.name[0] == '.')
      throw FormatError(path + ": file name \"" + cf.name + "\" must be a plain name inside the step directory");
    cf.rank = static_cast<int>(g.at("rank", json::value_t::number_unsigned, "a rank (0 or more)").get<uint64_t>());
    cf.bytes = g.at("bytes", json::value_t::number_unsigned, "a byte count").get<uint64_t>();
    cf.crc32 = parse_hex32(g.at("crc32", json::value_t::string, "8 hex digits").get<std::string>(), ok);
    if (!ok) throw FormatError(path + ": " + cf.name + ": \"crc32\" must be 8 lower-case hex digits");
    if (cf.rank >= idx.world_size || !ranks.insert(cf.rank).second)
      throw FormatError(path + ": " + cf.name + ": rank " + std::to_string(cf.rank) + " is outside 0.." +
                        std::to_string(idx.world_size - 1) + " or listed twice");
    idx.files.push_back(cf);
  }
  if (static_cast<int>(ranks.size()) != idx.world_size)
    throw FormatError(path + ": lists " + std::to_string(ranks.size()) + " rank files for world_size " +
                      std::to_string(idx.world_size));
  return idx;
}

std::string resolve_checkpoint(const std::string& path) {
  const fs::path p(path);
  std::error_code ec;
  if (!fs::exists(p, ec)) throw FormatError(path + ": no such checkpoint directory");
  if (fs::exists(p / "index.json")) return p.string();
  if (!fs::is_directory(p)) throw FormatError(path + ": not a checkpoint directory");
  int best = -1, incomplete = 0;
  std::string best_name;
  for (const auto& e : fs::directory_iterator(p)) {
    const std::string name = e.path().filename().string();
    const int step = e.is_directory() ? step_of(name) : -1;
    if (step < 0) continue;
    if (!fs::exists(e.path() / "index.json")) {
      ++incomplete;
      continue;
    }
    if (step > best) {
      best = step;
      best_name = name;
    }
  }
  if (best < 0)
    throw FormatError(path + ": no complete checkpoint: neither an index.json nor a step-N directory holding one" +
                      (incomplete ? " (" + std::to_string(incomplete) + " step directories without index.json)" : ""));
  return (p / best_name).string();
}

void check_trained_with(const CheckpointIndex& index, const json& ours, int world_size, const std::string& index_path) {
  std::vector<std::string> diffs;
  if (index.world_size != world_size)
    diffs.push_back("world size: " + std::to_string(index.world_size) + " ranks in the checkpoint, " +
                    std::to_string(world_size) + " in this run");
  std::set<std::string> keys;
  for (const auto& [k, v] : index.trained_with.items()) keys.insert(k);
  for (const auto& [k, v] : ours.items()) keys.insert(k);
  for (const std::string& k : keys) {
    const json a = index.trained_with.value(k, json()), b = ours.value(k, json());
    if (a != b) diffs.push_back(k + ": " + shown(a) + " in the checkpoint, " + shown(b) + " in this run");
  }
  if (diffs.empty()) return;
  std::string msg;
  for (const std::string& d : diffs) msg += (msg.empty() ? "" : "; ") + d;
  throw FormatError(index_path + ": the checkpoint was written by another run: " + msg +
                    ". Resume with the plan, number of ranks and options it was written with");
}

const CheckpointFile& file_of_rank(const CheckpointIndex& index, int rank, const std::string& index_path) {
  for (const CheckpointFile& f : index.files)
    if (f.rank == rank) return f;
  throw FormatError(index_path + ": no file for rank " + std::to_string(rank));
}

void verify_checkpoint_file(const std::string& step_dir, const CheckpointFile& file) {
  const std::string path = (fs::path(step_dir) / file.name).string();
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec)
    throw FormatError(path + ": missing (index.json lists it for rank " + std::to_string(file.rank) + "): " +
                      ec.message());
  if (size != file.bytes)
    throw FormatError(path + ": " + std::to_string(size) + " bytes, but index.json records " +
                      std::to_string(file.bytes) +
                      (size < file.bytes ? " (the file is truncated)" : " (the file has bytes it should not have)"));
  const uint32_t crc = file_crc32(path);
  if (crc != file.crc32)
    throw FormatError(path + ": CRC-32 " + crc32_hex(crc) + ", but index.json records " + crc32_hex(file.crc32) +
                      ": the file is corrupt");
}

std::string publish_checkpoint(const std::string& root, const CheckpointIndex& index) {
  const fs::path r(root), partial = r / partial_dir_name(index.step), final_dir = r / step_dir_name(index.step);
  std::set<std::string> keep{"index.json"};
  for (const CheckpointFile& f : index.files) keep.insert(f.name);
  for (const auto& e : fs::directory_iterator(partial))
    if (!keep.count(e.path().filename().string())) fs::remove_all(e.path());
  write_file_durably((partial / "index.json").string(), index_to_json(index).dump(2) + "\n");
  fs::path old;
  if (fs::exists(final_dir)) {  // the same step written again (a run resumed from an earlier one)
    old = r / hidden_step_dir(index.step, ".old");
    fs::remove_all(old);
    fs::rename(final_dir, old);
    sync_dir(root);
  }
  fs::rename(partial, final_dir);
  sync_dir(root);
  if (!old.empty()) fs::remove_all(old);
  return final_dir.string();
}

}  // namespace paraplan::exec
