#include "paraplan/exec/dataset.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "paraplan/exec/crc32.hpp"

namespace paraplan::exec {

namespace {

// splitmix64 (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators"): a
// counter-based mix, so a value depends only on its inputs, not on what was drawn before.
uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string field(const nlohmann::json& j, const char* key, const std::string& where, bool required) {
  if (!j.contains(key)) {
    if (required) throw DataError(where + ": missing \"" + key + "\"");
    return "";
  }
  if (!j[key].is_string()) throw DataError(where + ": \"" + key + "\" must be a string");
  return j[key].get<std::string>();
}

}  // namespace

ByteTokenizer::ByteTokenizer(int64_t vocab) : vocab_(vocab) {
  if (vocab < 256)
    throw DataError("model.vocab = " + std::to_string(vocab) + ": the byte-level tokenizer needs at least 256 tokens");
}

std::vector<int32_t> ByteTokenizer::encode(const std::string& text) const {
  std::vector<int32_t> out(text.size());
  for (size_t i = 0; i < text.size(); ++i) out[i] = static_cast<unsigned char>(text[i]);
  return out;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += id < 256 ? static_cast<char>(id) : '\n';
  return out;
}

std::string dolly_prompt(const std::string& instruction, const std::string& context, const std::string& response) {
  std::string s =
      "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
      "### Instruction:\n" + instruction + "\n\n";
  if (!context.empty()) s += "Input:\n" + context + "\n\n";
  return s + "### Response:\n" + response + "\n\n### End";
}

std::vector<std::string> read_documents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": cannot open the data file");
  std::vector<std::string> docs;
  if (!ends_with(path, ".jsonl") && !ends_with(path, ".json")) {
    std::stringstream ss;
    ss << in.rdbuf();
    docs.push_back(ss.str());
    if (docs[0].empty()) throw DataError(path + ": the data file is empty");
    return docs;
  }
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
      throw DataError(where + ": not a JSON object (" + e.what() + ")");
    }
    if (!j.is_object()) throw DataError(where + ": each line must be a JSON object");
    if (j.contains("text")) {
      docs.push_back(field(j, "text", where, true));
    } else if (j.contains("instruction") || j.contains("response")) {
      docs.push_back(dolly_prompt(field(j, "instruction", where, true), field(j, "context", where, false),
                                  field(j, "response", where, true)));
    } else {
      throw DataError(where + ": needs \"text\", or \"instruction\" and \"response\" (databricks-dolly-15k)");
    }
  }
  if (docs.empty()) throw DataError(path + ": no records");
  return docs;
}

std::vector<std::string> synthetic_documents(int n, uint64_t seed) {
  std::vector<std::string> docs;
  docs.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const uint64_t r = mix(seed * 1'000'003ull + static_cast<uint64_t>(i));
    const int a = static_cast<int>(r % 100), b = static_cast<int>((r >> 16) % 100);
    docs.push_back(std::to_string(a) + " + " + std::to_string(b) + " = " + std::to_string(a + b) + ".");
  }
  return docs;
}

TokenDataset::TokenDataset(const std::vector<std::string>& documents, const ByteTokenizer& tok, std::string origin)
    : origin_(std::move(origin)) {
  for (const std::string& d : documents) {
    const auto ids = tok.encode(d);
    stream_.insert(stream_.end(), ids.begin(), ids.end());
    stream_.push_back(tok.has_eos() ? tok.eos() : static_cast<int32_t>('\n'));
  }
}

uint32_t TokenDataset::fingerprint() const { return crc32(stream_.data(), stream_.size() * sizeof(int32_t)); }

void TokenDataset::sample(uint64_t seed, int64_t step, int64_t index, int64_t seq_len, int64_t* inputs,
                          int64_t* targets) const {
  const int64_t n = tokens();
  if (n < seq_len + 1)
    throw DataError(origin_ + ": " + std::to_string(n) + " tokens, fewer than training.seq_len + 1 = " +
                    std::to_string(seq_len + 1) + "; use more data or a shorter seq_len");
  const uint64_t h = mix(mix(mix(seed) ^ static_cast<uint64_t>(step)) ^ static_cast<uint64_t>(index));
  const int64_t start = static_cast<int64_t>(h % static_cast<uint64_t>(n - seq_len));
  for (int64_t i = 0; i < seq_len; ++i) {
    inputs[i] = stream_[static_cast<size_t>(start + i)];
    targets[i] = stream_[static_cast<size_t>(start + i + 1)];
  }
}

int64_t global_sequence_index(int dp_rank, int dp, int micro_batch, int64_t micro_index, int element) {
  return (micro_index * dp + dp_rank) * micro_batch + element;
}

}  // namespace paraplan::exec
