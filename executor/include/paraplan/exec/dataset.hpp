#pragma once
// Training data without LibTorch: a byte-level tokenizer, documents from a text file or JSONL
// ({"text"} records, or {instruction, context, response} records as in databricks-dolly-15k), joined
// into one token stream, and deterministic sampling: which window of the stream a sequence reads
// depends only on (seed, step, sequence index in the global batch), so every data-parallel layout of
// the same global batch sees the same sequences.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace paraplan::exec {

class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Tokens are the UTF-8 bytes (0-255). With a vocabulary of at least 257 entries, id 256 ends each
// document; with exactly 256, documents are separated by a newline byte.
class ByteTokenizer {
 public:
  explicit ByteTokenizer(int64_t vocab);  // DataError if vocab < 256
  std::vector<int32_t> encode(const std::string& text) const;
  std::string decode(const std::vector<int32_t>& ids) const;  // the end-of-document id becomes "\n"
  int64_t vocab() const { return vocab_; }
  bool has_eos() const { return vocab_ > 256; }
  int32_t eos() const { return 256; }

 private:
  int64_t vocab_;
};

// The databricks-dolly-15k training prompt (databricks/dolly, training/consts.py): an intro line, then
// "### Instruction:", the optional "Input:" context, "### Response:" and "### End".
std::string dolly_prompt(const std::string& instruction, const std::string& context, const std::string& response);

// Documents of a file: *.jsonl / *.json are JSON Lines (one object per line: "text", or "instruction" +
// "response" with an optional "context"); anything else is one plain-text document. Errors name the
// file, the line and the missing field.
std::vector<std::string> read_documents(const std::string& path);

// A built-in corpus for runs without --data: `n` short arithmetic sentences ("17 + 5 = 22.") drawn
// with a fixed seed, learnable, so a loss curve falls.
std::vector<std::string> synthetic_documents(int n, uint64_t seed);

class TokenDataset {
 public:
  TokenDataset(const std::vector<std::string>& documents, const ByteTokenizer& tok, std::string origin);
  int64_t tokens() const { return static_cast<int64_t>(stream_.size()); }
  const std::string& origin() const { return origin_; }
  uint32_t fingerprint() const;  // CRC-32 of the token stream (int32 little-endian): the same data or not
  // Copies the window for global sequence `index` of optimizer step `step` (0-based): seq_len inputs
  // and the next seq_len tokens as targets. DataError if the stream is shorter than seq_len + 1.
  void sample(uint64_t seed, int64_t step, int64_t index, int64_t seq_len, int64_t* inputs, int64_t* targets) const;

 private:
  std::vector<int32_t> stream_;
  std::string origin_;
};

// Which global sequences a data-parallel rank reads for one micro-batch: micro-batch k of rank d
// holds sequences (k * dp + d) * micro_batch + e, e < micro_batch, so the union over ranks and
// micro-batches is the whole global batch [0, global_batch).
int64_t global_sequence_index(int dp_rank, int dp, int micro_batch, int64_t micro_index, int element);

}  // namespace paraplan::exec
