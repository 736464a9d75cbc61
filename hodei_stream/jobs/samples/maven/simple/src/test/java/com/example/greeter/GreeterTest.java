package com.example.greeter;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class GreeterTest {
    @Test
    public void greetsByName() {
        assertEquals("Hello, Ada!", new Greeter("Hello").greet("  Ada "));
    }

    @Test
    public void greetsTheWorldWhenNoNameIsGiven() {
        assertEquals("Kaixo, world!", new Greeter("Kaixo").greet(""));
    }

    @Test(expected = IllegalArgumentException.class)
    public void refusesABlankGreeting() {
        new Greeter(" ");
    }
}
