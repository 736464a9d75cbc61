package com.example.greeter;

/** Builds greetings; the one class of the simple Maven sample. */
public final class Greeter {
    private final String greeting;

    public Greeter(String greeting) {
        if (greeting == null || greeting.isBlank()) {
            throw new IllegalArgumentException("a greeting needs words");
        }
        this.greeting = greeting.strip();
    }

    /** "Hello, Ada!" for greeting "Hello" and name "Ada"; a blank name greets the world. */
    public String greet(String name) {
        String who = (name == null || name.isBlank()) ? "world" : name.strip();
        return greeting + ", " + who + "!";
    }

    public static void main(String[] args) {
        System.out.println(new Greeter("Hello").greet(args.length > 0 ? args[0] : null));
    }
}
