"""The native start-state protocol: the base class, the checker, idle slots, and the schedule's independence from
episode lengths and outcomes. The native env is the one ``docs/guide/native_envs.md`` writes, run from the page."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor, VecNormalize

from sb3_maxrl import MaxRL
from sb3_maxrl.common.env_checker import StartStateEnvError, check_start_state_env
from sb3_maxrl.common.group_rollouts import collect_group_episodes
from sb3_maxrl.common.native_vec_env import NativeStartStateVecEnv
from sb3_maxrl.common.start_states import IDLE, EpisodeStart, StartStateWrapper, uses_idle_slots
from sb3_maxrl.maxrl.policies import MaxRLPolicy
from sb3_maxrl_envs import PrototypesEnv, PrototypesTask
from sb3_maxrl_envs.strict_maze import StrictMazeEnv, StrictMazeVecEnv

DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "guide" / "native_envs.md"


def docs_env_class() -> type[NativeStartStateVecEnv]:
    """The example VecEnv of the docs page, defined by running the page's first code block."""
    code = re.findall(r"```python\n(.*?)```", DOCS_PAGE.read_text(), flags=re.DOTALL)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(DOCS_PAGE), "exec"), namespace)
    return namespace["EchoCorridorVecEnv"]


EchoCorridorVecEnv = docs_env_class()


class EchoCorridorEnv(gym.Env):
    """The single env the docs' VecEnv vectorizes: its random bits come from ``np_random``."""

    observation_space = spaces.Box(0.0, 1.0, shape=(3,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        seed = int(self.np_random.integers(2**31)) if seed is None else seed
        self.length, self.position, self.moves, self.bit = 2 + seed % 4, 0, 0, 0
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.position += int(action) == self.bit
        self.moves += 1
        self.bit = int(self.np_random.integers(2))
        success = self.position == self.length
        truncated = not success and self.moves == 2 * self.length
        info = {"is_success": success} if success or truncated else {}
        return self._observation(), float(success), success, truncated, info

    def _observation(self) -> np.ndarray:
        return np.array([self.position / 5, self.length / 5, self.bit], dtype=np.float32)


class EchoCorridorWithoutIdleVecEnv(EchoCorridorVecEnv):  # type: ignore[valid-type, misc]
    supports_idle_slots = False


class GreedyPolicy(MaxRLPolicy):
    """Takes the most probable action: the episodes depend on the parameters and the env only, not on torch's RNG."""

    def forward(self, obs: Any, deterministic: bool = False) -> tuple[th.Tensor, th.Tensor]:  # type: ignore[override]
        return super().forward(obs, deterministic=True)


def test_the_docs_example_passes_the_checker_step_for_step_against_its_single_env() -> None:
    check_start_state_env(EchoCorridorVecEnv(4), make_env=EchoCorridorEnv)
    check_start_state_env(EchoCorridorWithoutIdleVecEnv(3), make_env=EchoCorridorEnv)


def test_the_library_native_envs_pass_the_checker() -> None:
    check_start_state_env(StrictMazeVecEnv(5, size=9, seed=0), make_env=lambda: StrictMazeEnv(9), start_seeds=(1, 2, 3))
    from sb3_maxrl.common.one_step import OneStepVecEnv

    check_start_state_env(OneStepVecEnv(PrototypesTask(n_classes=4, dim=3), num_envs=3), make_env=lambda: PrototypesEnv(4, 3))


class ForgetsItsQueue(EchoCorridorWithoutIdleVecEnv):
    def pop_starts(self, slots: Any) -> tuple[list[int], list[EpisodeStart | None]]:
        starting, _ = super().pop_starts(slots)
        return starting, [None] * len(starting)  # a fresh start every time


class StartNotFixedBySeed(EchoCorridorWithoutIdleVecEnv):
    def _start_episodes(self, slots: Any) -> None:
        super()._start_episodes(slots)
        self.lengths[:] = self.fresh_seeds.integers(2, 6, size=self.num_envs)


class NoStartKeys(EchoCorridorWithoutIdleVecEnv):
    def step_wait(self) -> Any:
        observations, rewards, dones, infos = super().step_wait()
        return observations, rewards, dones, [{k: v for k, v in info.items() if k != "start_seed"} for info in infos]


class IdleSlotStillMoves(EchoCorridorVecEnv):  # type: ignore[valid-type, misc]
    def _observe(self) -> np.ndarray:
        return np.stack([self.positions / 5, self.lengths / 5, self.bits], axis=1).astype(np.float32) + 0.5


@pytest.mark.parametrize(
    ("env_class", "match"),
    [
        (ForgetsItsQueue, "must pop the head of that slot's queue"),
        (StartNotFixedBySeed, "pure function of the seed"),
        (NoStartKeys, "lacks 'start_seed'"),
        (IdleSlotStillMoves, "idle slot must observe zeros"),
    ],
)
def test_the_checker_names_the_broken_promise(env_class: type, match: str) -> None:
    with pytest.raises(StartStateEnvError, match=match):
        check_start_state_env(env_class(3))
    with pytest.raises(StartStateEnvError, match="no schedule_episodes"):
        check_start_state_env(DummyVecEnv([EchoCorridorEnv]))


def test_a_differing_step_is_caught_against_the_single_env() -> None:
    class OffByOne(EchoCorridorEnv):
        def _observation(self) -> np.ndarray:
            return super()._observation() * 0.5

    with pytest.raises(StartStateEnvError, match="observations"):
        check_start_state_env(EchoCorridorVecEnv(2), make_env=OffByOne)


def test_idle_starts_are_refused_by_envs_without_idle_slots_and_negative_seeds_by_all() -> None:
    with pytest.raises(ValueError, match="supports_idle_slots is False"):
        EchoCorridorWithoutIdleVecEnv(2).schedule_episodes({0: [IDLE]})
    with pytest.raises(ValueError, match="int >= 0"):
        EchoCorridorVecEnv(2).schedule_episodes({0: [-1]})
    with pytest.raises(ValueError, match="Slot 2 does not exist"):
        EchoCorridorVecEnv(2).schedule_episodes({2: [0]})


def test_idle_slots_are_used_only_where_no_wrapper_keeps_observation_statistics() -> None:
    assert uses_idle_slots(EchoCorridorVecEnv(2)) and uses_idle_slots(VecMonitor(EchoCorridorVecEnv(2)))
    assert not uses_idle_slots(VecNormalize(EchoCorridorVecEnv(2)))
    assert not uses_idle_slots(EchoCorridorWithoutIdleVecEnv(2))
    assert not uses_idle_slots(DummyVecEnv([lambda: StartStateWrapper(EchoCorridorEnv())]))


class RecordUtilization(BaseCallback):
    def __init__(self, values: list[float]):
        super().__init__()
        self.values = values

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.values.append(self.locals["episodes"].utilization)


def greedy_model(env: Any) -> MaxRL:
    settings = dict(group_size=4, n_groups=3, n_epochs=2, batch_size=16, policy_kwargs=dict(net_arch=[8]), seed=1)
    return MaxRL(GreedyPolicy, env, **settings)


@pytest.mark.parametrize("num_envs", [5, 16])
def test_idle_slots_and_throw_away_episodes_give_the_same_updates(num_envs: int) -> None:
    """Same seed, same kept episodes: the same parameters (to float rounding), whether unused slots idle or run
    throw-away episodes."""
    idle, throw_away = greedy_model(EchoCorridorVecEnv(num_envs)), greedy_model(EchoCorridorWithoutIdleVecEnv(num_envs))
    initial = th.nn.utils.parameters_to_vector(idle.policy.parameters()).detach().clone()
    utilization: dict[MaxRL, list[float]] = {idle: [], throw_away: []}
    for update in range(3):
        for model in (idle, throw_away):  # the two runs share torch's global RNG (minibatch order): same state each
            th.manual_seed(update)
            model.learn(1, callback=RecordUtilization(utilization[model]), reset_num_timesteps=update == 0)
        np.testing.assert_array_equal(idle.rollout_buffer.step_episode_ids, throw_away.rollout_buffer.step_episode_ids)
        assert idle.num_timesteps == throw_away.num_timesteps  # a timestep budget buys the same updates
    assert utilization[idle] == [1.0] * 3 and max(utilization[throw_away]) < 1.0
    after_idle = th.nn.utils.parameters_to_vector(idle.policy.parameters()).detach()
    after_throw_away = th.nn.utils.parameters_to_vector(throw_away.policy.parameters()).detach()
    assert float((after_idle - initial).abs().max()) > 0  # the updates did move the policy
    # equal up to float rounding: the policy's forward batches differ in size (active slots only against every
    # slot), and on some CPUs matrix kernels sum in a batch-size-dependent order (differences ~1e-8 here)
    th.testing.assert_close(after_idle, after_throw_away, rtol=1e-5, atol=1e-6)
    assert idle.logger.name_to_value["rollout/useful_steps_per_second"] > 0


def isolated_outcome(start: EpisodeStart, act: Any) -> tuple[float, int]:
    """Run one episode alone in the single env: its likelihood and length."""
    env = StartStateWrapper(EchoCorridorEnv())
    env.set_start_schedule([start])
    observation, _ = env.reset()
    for length in range(1, 100):
        observation, _, terminated, truncated, info = env.step(act(observation[None])[0][0])
        if terminated or truncated:
            return float(info["is_success"]), length
    raise AssertionError("the episode did not end")


@pytest.mark.parametrize("env_class", [EchoCorridorVecEnv, EchoCorridorWithoutIdleVecEnv])
@pytest.mark.parametrize("num_envs", [1, 3, 7])
def test_episode_e_of_the_update_is_the_scheduled_episode_e_whatever_ends_first(env_class: type, num_envs: int) -> None:
    """The schedule is unbiased: which episodes enter the update, and in which row, is fixed before any of them runs.

    Episodes of different lengths finish in any order on any slot; each still lands in its own row, with the
    outcome it has when run alone from its (start seed, noise seed)."""

    def act(observations: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        actions = np.ones(len(observations), dtype=np.int64)  # right half the time
        return actions, actions, np.zeros(len(actions))

    group_seeds, group_size = [2, 7, 12, 5], 5
    noise_seeds = list(range(100, 100 + len(group_seeds) * group_size))
    episodes = collect_group_episodes(env_class(num_envs), group_seeds, group_size, act, noise_seeds=noise_seeds)
    expected = [
        isolated_outcome(EpisodeStart(group_seeds[e // group_size], noise_seeds[e]), act) for e in range(len(noise_seeds))
    ]
    np.testing.assert_array_equal(episodes.likelihoods, [likelihood for likelihood, _ in expected])
    np.testing.assert_array_equal(episodes.lengths, [length for _, length in expected])
    assert len(set(episodes.lengths.tolist())) > 1 and 0 < episodes.likelihoods.mean() < 1
