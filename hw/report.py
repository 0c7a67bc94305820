"""What an accelerator costs and how fast it should run: the numbers of a build's report.

Everything comes from the plan (`hw.plan`) and the engines the `Accelerator` actually built;
nothing is re-estimated here, so the report and the hardware cannot disagree.

- `initiation_interval` (= `estimated_cycles_per_inference`): cycles between consecutive
  inferences in steady state, the slowest engine's cycles per sample; `intforge sim`
  measures it.
- `ideal_cycles` = ceil(MACs / multipliers): what the multipliers would need if every one
  of them were busy every cycle. interval / ideal_cycles is the price of folding whole
  layers onto whole multipliers.
- a layer's `latency` is its engine's pipeline depth in cycles (from an input beat to the
  output it completes); `pipeline_latency` is their sum along the graph's ops.
- `weight_bits`: ROM bits of weights and biases, each at the narrowest signed width that
  holds its values.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from hw.lower import Accelerator, _input_lanes
from hw.plan import Plan, Stage


@dataclass(frozen=True)
class LayerCost:
    name: str
    op: str
    fold: tuple[int, int] | None  # (P outputs, S inputs) of a MAC layer
    lanes: int  # output lanes (P for a MAC layer)
    in_lanes: int  # input lanes (S for a dense layer)
    multipliers: int
    macs: int
    cycles: int  # per inference, steady state
    latency: int
    weight_bits: int


@dataclass(frozen=True)
class Report:
    layers: list[LayerCost]
    macs: int
    multipliers: int
    ideal_cycles: int
    initiation_interval: int
    pipeline_latency: int
    weight_bits: int
    input_elements: int
    output_elements: int

    def to_json(self) -> dict:
        """The report.json object (`estimated_cycles_per_inference` is the interval)."""
        return {"macs": self.macs, "multipliers": self.multipliers,
                "ideal_cycles": self.ideal_cycles,
                "estimated_cycles_per_inference": self.initiation_interval,
                "initiation_interval": self.initiation_interval,
                "pipeline_latency": self.pipeline_latency,
                "weight_memory_bits": self.weight_bits,
                "input_elements": self.input_elements, "output_elements": self.output_elements,
                "layers": [{**asdict(layer), "fold": list(layer.fold) if layer.fold else None}
                           for layer in self.layers]}


def make_report(plan: Plan, accelerator: Accelerator) -> Report:
    """The report of `accelerator`, built from `plan`."""
    layers = [_layer(stage, getattr(accelerator.engines.get(stage.op.name), "latency", 0))
              for stage in plan.stages]
    return Report(layers, plan.macs, plan.multipliers, plan.ideal_cycles, accelerator.interval,
                  accelerator.latency, sum(layer.weight_bits for layer in layers),
                  plan.input_elements, plan.output_elements)


def _layer(stage: Stage, latency: int) -> LayerCost:
    fold = (stage.fold.outputs, stage.fold.inputs) if stage.fold else None
    return LayerCost(stage.op.name, type(stage.op).__name__, fold, stage.out_lanes,
                     _input_lanes(stage.op, stage), stage.multipliers, stage.macs, stage.cycles,
                     latency, stage.weight_bits)
