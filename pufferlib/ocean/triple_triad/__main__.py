from pufferlib.ocean.triple_triad.triple_triad import play

play()
