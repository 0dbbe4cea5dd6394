#pragma once
// The spelling of every enum in the plan format; parse and print use the same tables.
#include <vector>

#include "json_reader.hpp"
#include "paraplan/plan.hpp"

namespace paraplan::planner::detail {

inline const std::vector<EnumName<Activation>> kActivations{{"gelu", Activation::gelu},
                                                            {"swiglu", Activation::swiglu}};
inline const std::vector<EnumName<Norm>> kNorms{{"layernorm", Norm::layernorm}, {"rmsnorm", Norm::rmsnorm}};
inline const std::vector<EnumName<Bias>> kBiases{{"none", Bias::none}, {"qkv", Bias::qkv},
                                                 {"attention", Bias::attention}, {"mlp", Bias::mlp},
                                                 {"all", Bias::all}};
inline const std::vector<EnumName<PositionEmbedding>> kPositions{{"rope", PositionEmbedding::rope},
                                                                 {"learned", PositionEmbedding::learned}};
inline const std::vector<EnumName<Precision>> kPrecisions{
    {"bf16", Precision::bf16}, {"fp16", Precision::fp16}, {"fp32", Precision::fp32}, {"fp8", Precision::fp8}};
inline const std::vector<EnumName<GradDtype>> kGradDtypes{
    {"fp32", GradDtype::fp32}, {"bf16", GradDtype::bf16}, {"fp16", GradDtype::fp16}};
inline const std::vector<EnumName<Optimizer>> kOptimizers{{"adamw", Optimizer::adamw},
                                                          {"adam", Optimizer::adam},
                                                          {"sgd", Optimizer::sgd},
                                                          {"sgd-momentum", Optimizer::sgd_momentum},
                                                          {"adam8bit", Optimizer::adam8bit}};
inline const std::vector<EnumName<Recompute>> kRecomputes{
    {"none", Recompute::none}, {"selective", Recompute::selective}, {"full", Recompute::full}};
inline const std::vector<EnumName<Offload>> kOffloads{
    {"none", Offload::none}, {"optimizer", Offload::optimizer}, {"optimizer+params", Offload::optimizer_params}};
inline const std::vector<EnumName<LoraBase>> kLoraBases{
    {"fp32", LoraBase::fp32}, {"bf16", LoraBase::bf16}, {"nf4", LoraBase::nf4}};
inline const std::vector<EnumName<Framework>> kFrameworks{{"megatron", Framework::megatron},
                                                          {"deepspeed", Framework::deepspeed},
                                                          {"fsdp", Framework::fsdp},
                                                          {"paraplan", Framework::paraplan},
                                                          {"megatron-2021", Framework::megatron_2021},
                                                          {"fsdp-compile", Framework::fsdp_compile}};
inline const std::vector<EnumName<CrossEntropy>> kCrossEntropies{{"unfused", CrossEntropy::unfused},
                                                                 {"te", CrossEntropy::te}};
inline const std::vector<EnumName<PipelineSchedule>> kSchedules{{"gpipe", PipelineSchedule::gpipe},
                                                                {"1f1b", PipelineSchedule::one_f_one_b},
                                                                {"interleaved", PipelineSchedule::interleaved},
                                                                {"zb-h1", PipelineSchedule::zb_h1},
                                                                {"zbv", PipelineSchedule::zbv}};

template <class E>
const char* name_of(const std::vector<EnumName<E>>& table, E value) {
  for (const auto& n : table)
    if (n.value == value) return n.name;
  return "?";
}

}  // namespace paraplan::planner::detail
