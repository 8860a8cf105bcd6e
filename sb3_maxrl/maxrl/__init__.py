from sb3_maxrl.maxrl.maxrl import MaxRL
from sb3_maxrl.maxrl.policies import CnnPolicy, MlpPolicy, MultiInputPolicy

__all__ = ["CnnPolicy", "MaxRL", "MlpPolicy", "MultiInputPolicy"]
