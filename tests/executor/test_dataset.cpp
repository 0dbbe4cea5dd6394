// Byte tokenizer, data files (plain text, {"text"} and dolly-15k JSONL) and per-rank sampling.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "paraplan/exec/dataset.hpp"

using namespace paraplan::exec;
namespace fs = std::filesystem;

namespace {

std::string write(const std::string& name, const std::string& text) {
  const fs::path d = fs::temp_directory_path() / ("paraplan-data-" + std::to_string(getpid()));
  fs::create_directories(d);
  std::ofstream(d / name) << text;
  return (d / name).string();
}

std::string error_of(const std::string& path) {
  try {
    read_documents(path);
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Dataset, BytesAreTokens) {
  const ByteTokenizer t(256);
  EXPECT_EQ(t.encode("Az\xc3\xa9"), (std::vector<int32_t>{65, 122, 0xc3, 0xa9}));  // "Azé" in UTF-8
  EXPECT_EQ(t.decode({104, 105}), "hi");
  EXPECT_FALSE(t.has_eos());
  EXPECT_TRUE(ByteTokenizer(300).has_eos());
  try {
    ByteTokenizer(255);
    FAIL() << "a vocabulary of 255 was accepted";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "model.vocab = 255: the byte-level tokenizer needs at least 256 tokens");
  }
}

TEST(Dataset, DollyRecordsUseTheDollyTemplate) {
  const std::string p = write("dolly.jsonl",
                              R"({"instruction": "Add.", "context": "2 and 3", "response": "5", "category": "qa"})" "\n"
                              R"({"instruction": "Greet.", "response": "Hi"})" "\n");
  const auto docs = read_documents(p);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0],
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
            "### Instruction:\nAdd.\n\nInput:\n2 and 3\n\n### Response:\n5\n\n### End");
  EXPECT_EQ(docs[1].find("Input:"), std::string::npos);  // no context, no input block
}

TEST(Dataset, FileErrorsNameFileLineAndField) {
  EXPECT_NE(error_of(write("bad.jsonl", "{\"text\": \"ok\"}\n{\"instruction\": \"x\"}\n")).find("bad.jsonl:2: missing \"response\""),
            std::string::npos);
  EXPECT_NE(error_of(write("bad2.jsonl", "[1, 2]\n")).find("bad2.jsonl:1: each line must be a JSON object"),
            std::string::npos);
  EXPECT_NE(error_of(write("bad3.jsonl", "{\"t\": 1}\n")).find("bad3.jsonl:1: needs \"text\""), std::string::npos);
  EXPECT_NE(error_of("/nonexistent/x.txt").find("/nonexistent/x.txt: cannot open"), std::string::npos);
}

TEST(Dataset, WindowsAreNextTokenPairsAndDeterministic) {
  const ByteTokenizer t(257);
  const TokenDataset d({"abcdefgh"}, t, "test");
  EXPECT_EQ(d.tokens(), 9);  // 8 bytes + end of document
  int64_t in[4], tg[4], in2[4], tg2[4];
  d.sample(1, 2, 3, 4, in, tg);
  d.sample(1, 2, 3, 4, in2, tg2);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(in[i], in2[i]);
    if (i < 3) {
      EXPECT_EQ(tg[i], in[i + 1]);  // targets are the inputs shifted by one
    }
  }
  int64_t big[9], bt[9];
  try {
    d.sample(1, 0, 0, 9, big, bt);
    FAIL() << "a window longer than the stream was sampled";
  } catch (const DataError& e) {  // needs seq_len + 1 = 10 tokens
    EXPECT_STREQ(e.what(), "test: 9 tokens, fewer than training.seq_len + 1 = 10; use more data or a shorter seq_len");
  }
}

TEST(Dataset, DataParallelRanksCoverTheGlobalBatchOnce) {
  // dp = 2, micro_batch = 2, 3 micro-batches per step: 12 sequences per step.
  std::multiset<int64_t> seen;
  for (int rank = 0; rank < 2; ++rank)
    for (int k = 0; k < 3; ++k)
      for (int e = 0; e < 2; ++e) seen.insert(global_sequence_index(rank, 2, 2, k, e));
  std::multiset<int64_t> expect;
  for (int64_t i = 0; i < 12; ++i) expect.insert(i);
  EXPECT_EQ(seen, expect);
}

// The out_of_range that fuzz_safetensors found in the safetensors header (a number past a double's
// range), in the JSON-lines reader: a DataError naming the line, not terminate.
TEST(Dataset, NumberBeyondADoubleIsALineError) {
  const std::string e = error_of(write("overflow.jsonl", "{\"text\": \"a\", \"n\": 1e400}\n"));
  EXPECT_NE(e.find("overflow.jsonl:1: not a JSON object"), std::string::npos) << e;
}
